import type { Redis } from 'ioredis';

/** One stream entry as the handler gets it. */
export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

/** Staff: what an idempotent handler returns instead of writing to Redis itself. */
export interface Effect {
  key: string;
  value: string;
}

export interface StreamWorkerOptions {
  /** ioredis client, mock or real. */
  redis: Redis;
  /** The stream key. */
  stream: string;
  /** The consumer group; created at the start of the stream if missing. */
  group: string;
  /** This worker's consumer name inside the group. */
  consumer: string;
  /**
   * Processes one entry. Resolving means done (the entry is acked); throwing leaves it pending.
   * With `idempotent: true` it returns the Effect (or Effects) to write instead of writing them.
   */
  handler: (entry: StreamEntry) => Promise<unknown>;
  /** Deliveries an entry may have; the one after that sends it to the dead-letter stream. */
  maxDeliveries: number;
  /** An entry pending for this long (ms) is presumed lost by its consumer and may be claimed. */
  claimIdleMs: number;
  /** Where entries that ran out of deliveries are copied. */
  deadLetterStream: string;
  /** New entries read per runOnce (and at most this many claimed). Default 10. */
  batchSize?: number;
  /** Staff: write the handler's effects, an idempotency record and the ack in one atomic step. */
  idempotent?: boolean;
  /**
   * Staff: read the stream only while holding its lease (one active consumer per partition, for
   * per-key order). The lease expires leaseMs after the last runOnce that renewed it.
   */
  exclusive?: { leaseMs: number };
}

export interface RunResult {
  /** Entries whose handler resolved and that were acked in this call. */
  processed: number;
  /** Claimed entries (idle too long at another or this consumer) handed to the handler again. */
  retried: number;
  /** Entries copied to the dead-letter stream and acked in this call. */
  deadLettered: number;
}

/** Staff: one entry for a partitioned stream (see publish). */
export interface PublishOptions {
  /** The base name: partition p is the stream `${stream}:${p}`. */
  stream: string;
  partitions: number;
  /** The ordering key (an order id, a user id): all its entries go to one partition. */
  key: string;
  fields: Record<string, string>;
}

type RawEntry = [id: string, fields: string[]];

const UNKNOWN_REASON = 'exceeded maxDeliveries';

/**
 * Staff commit, one script so nothing can run between the check and the writes: if the entry's
 * record exists, an earlier delivery already wrote its effects (a consumer that was presumed
 * dead and was only slow, or a crash after EXEC reached Redis), so only the ack is left to do.
 * KEYS: stream, record, effect keys…  ARGV: group, record TTL ms, entry id, effect values…
 * On a Redis Cluster a script runs in one slot: the record is named after the stream, so it
 * carries the stream's hash tag, and the handler's effect keys must carry it too (README).
 */
const COMMIT_ONCE = `
if redis.call('EXISTS', KEYS[2]) == 0 then
  for i = 3, #KEYS do
    redis.call('SET', KEYS[i], ARGV[i + 1])
  end
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
end
return redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
`;

/**
 * Staff lease: renew it if this worker's token still holds it, take it if nobody does (SET NX PX).
 * One script, so no other worker's SET can land between the check and the write. Returns 1 when
 * renewed, 2 when newly taken (a takeover: the previous holder's pending entries come first), 0
 * when another worker holds it. KEYS: lease  ARGV: token, leaseMs
 */
const HOLD_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 2 end
return 0
`;

/** Deletes the lease only if it is still this worker's: after it expired it may be another's. */
const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Staff: the partition of `key`, from a hash of its characters (32-bit FNV-1a). It depends on
 * nothing but its arguments, so every producer and consumer process computes the same one;
 * Math.random or a table built at run time would give each process its own mapping.
 */
export function partitionOf(key: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new RangeError(`partitions must be a positive integer, got ${partitions}`);
  }
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}

/**
 * Staff: appends an entry to the partition of its key, `${stream}:${partitionOf(key)}`, with the
 * key in its fields (`key`). Returns the entry id. One stream per partition keeps the entries of a
 * key in the order they were published.
 */
export async function publish(redis: Redis, { stream, partitions, key, fields }: PublishOptions): Promise<string> {
  const flat = Object.entries({ ...fields, key }).flat();
  return (await redis.xadd(`${stream}:${partitionOf(key, partitions)}`, '*', ...flat))!;
}

/** Compares two stream IDs (`ms-seq`) numerically; a string compare puts 10-0 before 9-0. */
function compareIds(a: string, b: string): number {
  const [aMs, aSeq] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bMs, bSeq] = b.split('-').map(BigInt) as [bigint, bigint];
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  return aSeq === bSeq ? 0 : aSeq < bSeq ? -1 : 1;
}

function toEntry([id, flat]: RawEntry): StreamEntry {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return { id, fields };
}

export class StreamWorker {
  private readonly redis: Redis;
  private readonly batchSize: number;
  private groupReady = false;
  /** The last failure of each entry this worker saw fail, for the dead-letter reason. */
  private readonly failures = new Map<string, string>();
  /** Staff: this worker's lease token, random so no other process can hold the same one. */
  private readonly token = crypto.randomUUID();
  /**
   * Staff: after a takeover, where the claim of everything the previous holder left pending has
   * got to (`0-0` to start); null once it is all claimed, or when there was no takeover.
   */
  private takeover: string | null = null;

  constructor(private readonly options: StreamWorkerOptions) {
    this.redis = options.redis;
    this.batchSize = options.batchSize ?? 10;
  }

  /** One pass: claim idle entries, dead-letter the exhausted ones, read new ones, handle them. */
  async runOnce(): Promise<RunResult> {
    const result: RunResult = { processed: 0, retried: 0, deadLettered: 0 };
    // Staff: without the lease another worker is the partition's one consumer; reading now would
    // run a key's entries on two workers at once.
    if (this.options.exclusive && !(await this.holdLease())) return result;
    await this.ensureGroup();

    // After a takeover the previous holder's pending entries come first, whatever their idle
    // time (its lease expired: it is gone), or a later entry of a key runs before an earlier one.
    const [claimed, cursor] = this.takeover
      ? await this.claimIdle(0, this.takeover)
      : await this.claimIdle(this.options.claimIdleMs);
    const deliveries = await this.deliveryCounts(claimed.map((entry) => entry.id));
    for (const entry of claimed) {
      const count = deliveries.get(entry.id) ?? 0;
      if (count > this.options.maxDeliveries) {
        await this.deadLetter(entry, count);
        result.deadLettered++;
        continue;
      }
      result.retried++;
      if (await this.handle(entry)) result.processed++;
    }

    // A takeover with more left pending than a batch reads nothing new until all are claimed.
    if (this.takeover) {
      this.takeover = cursor === '0-0' ? null : cursor;
      if (this.takeover) return result;
    }

    // `>`: entries never delivered to any consumer of the group. Reading `0` would hand this
    // consumer's own pending entries back at once, retrying a failure with no pause and counting
    // a delivery each time; they come back through the claim after claimIdleMs instead.
    const { stream, group, consumer } = this.options;
    const reply = (await this.redis.xreadgroup(
      'GROUP',
      group,
      consumer,
      'COUNT',
      this.batchSize,
      'STREAMS',
      stream,
      '>',
    )) as [string, RawEntry[]][] | null;
    // One after another, in id order: handling a batch concurrently would run two entries of a
    // key at once, which the exclusive (staff) mode is there to prevent.
    for (const raw of reply?.[0]?.[1] ?? []) {
      if (await this.handle(toEntry(raw))) result.processed++;
    }
    return result;
  }

  /** Staff: gives up the partition's lease, if it is still this worker's (see RELEASE_LEASE). */
  async release(): Promise<void> {
    if (!this.options.exclusive) return;
    await this.redis.eval(RELEASE_LEASE, 1, this.leaseKey(), this.token);
  }

  // Its scripts touch this one key, so it may live in any slot of a cluster.
  private leaseKey() {
    return `${this.options.stream}:lease:${this.options.group}`;
  }

  /** Staff: renews or takes the lease (see HOLD_LEASE); a fresh take starts a takeover. */
  private async holdLease(): Promise<boolean> {
    const { leaseMs } = this.options.exclusive!;
    const held = await this.redis.eval(HOLD_LEASE, 1, this.leaseKey(), this.token, leaseMs);
    if (held === 2) this.takeover = '0-0';
    return held !== 0;
  }

  /**
   * Removes the entries every group has acked: below the oldest pending entry of each group,
   * or up to its last-delivered-id when nothing is pending. Returns how many were removed.
   */
  async trim(): Promise<number> {
    const { stream } = this.options;
    let groups: unknown[][];
    try {
      groups = (await this.redis.xinfo('GROUPS', stream)) as unknown[][];
    } catch (error) {
      if (/no such key/i.test((error as Error).message)) return 0;
      throw error;
    }
    // No group means nobody has read anything yet: trimming then would drop every entry.
    if (groups.length === 0) return 0;
    const field = (info: unknown[], name: string) => info[info.indexOf(name) + 1];
    const oldestPending = await Promise.all(
      groups.map(async (info) => {
        if (Number(field(info, 'pending')) === 0) return null;
        const [, smallest] = (await this.redis.xpending(stream, String(field(info, 'name')))) as [number, string];
        return smallest;
      }),
    );
    let safe: string | undefined;
    groups.forEach((info, i) => {
      const point = oldestPending[i] ?? String(field(info, 'last-delivered-id'));
      if (safe === undefined || compareIds(point, safe) < 0) safe = point;
    });
    // MINID keeps the safe point itself and everything after it; exact (no `~`) so the count is
    // what was removed. MAXLEN would cut by length, whatever a group has not read yet.
    return this.redis.xtrim(stream, 'MINID', safe!);
  }

  /** XGROUP CREATE at `0` (not `$`: entries added before the first run must be processed). */
  private async ensureGroup() {
    if (this.groupReady) return;
    try {
      await this.redis.xgroup('CREATE', this.options.stream, this.options.group, '0', 'MKSTREAM');
    } catch (error) {
      // Another worker created it first: that is the normal case, not a failure.
      if (!(error as Error).message.startsWith('BUSYGROUP')) throw error;
    }
    this.groupReady = true;
  }

  /**
   * Entries idle for claimIdleMs or more at any consumer (crashed, or too slow), now ours. A
   * min-idle of 0 would steal entries a live consumer is working on. XAUTOCLAIM scans a bounded
   * part of the pending list per call, so follow its cursor until it wraps or the batch is full.
   * Returns the entries, in id order, and the cursor where the scan stopped (`0-0`: wrapped).
   */
  private async claimIdle(minIdleMs: number, from = '0-0'): Promise<[StreamEntry[], string]> {
    const { stream, group, consumer } = this.options;
    const entries: StreamEntry[] = [];
    let cursor = from;
    do {
      const [next, claimed, deleted] = (await this.redis.xautoclaim(
        stream,
        group,
        consumer,
        minIdleMs,
        cursor,
        'COUNT',
        this.batchSize - entries.length,
      )) as [string, RawEntry[], string[]];
      // Entries deleted or trimmed from the stream: Redis 7 already dropped them from the
      // pending list. There is nothing to hand to the handler, only memory to forget.
      for (const id of deleted ?? []) this.failures.delete(id);
      entries.push(...claimed.map(toEntry));
      cursor = next;
    } while (cursor !== '0-0' && entries.length < this.batchSize);
    return [entries, cursor];
  }

  /** Delivery counts from XPENDING (extended), one query per entry, all in one round trip. */
  private async deliveryCounts(ids: string[]): Promise<Map<string, number>> {
    const { stream, group } = this.options;
    const replies = await Promise.all(
      ids.map((id) => this.redis.xpending(stream, group, id, id, 1) as Promise<[string, string, number, number][]>),
    );
    return new Map(replies.flat().map(([id, , , count]) => [id, count]));
  }

  /** Runs the handler; acks (or commits its effects) only once it resolved. */
  private async handle(entry: StreamEntry): Promise<boolean> {
    let outcome: unknown;
    try {
      outcome = await this.options.handler(entry);
    } catch (error) {
      // No ack: the entry stays pending and comes back after claimIdleMs, here or elsewhere.
      this.failures.set(entry.id, error instanceof Error ? error.message : String(error));
      return false;
    }
    if (this.options.idempotent) await this.commitOnce(entry.id, outcome as Effect | Effect[]);
    else await this.redis.xack(this.options.stream, this.options.group, entry.id);
    this.failures.delete(entry.id);
    return true;
  }

  /** Staff: effects, idempotency record and ack in one script (see COMMIT_ONCE). */
  private async commitOnce(id: string, outcome: Effect | Effect[] | undefined) {
    const { stream, group, claimIdleMs, maxDeliveries } = this.options;
    const effects = outcome === undefined ? [] : Array.isArray(outcome) ? outcome : [outcome];
    // The record must outlive every redelivery of the entry (each comes claimIdleMs after the
    // last), with a wide margin: a record that expires first lets a late delivery write again.
    const recordTtlMs = Math.max(24 * 3_600_000, 10 * claimIdleMs * (maxDeliveries + 1));
    await this.redis.eval(
      COMMIT_ONCE,
      2 + effects.length,
      stream,
      `${stream}:done:${group}:${id}`,
      ...effects.map((effect) => effect.key),
      group,
      recordTtlMs,
      id,
      ...effects.map((effect) => effect.value),
    );
  }

  /**
   * Copy and ack in one MULTI: a crash between two separate commands would either lose the
   * entry (acked, never copied) or leave it both pending and dead-lettered (copied again later).
   * On a Redis Cluster a MULTI spans one slot, so deadLetterStream shares the stream's hash tag.
   */
  private async deadLetter(entry: StreamEntry, deliveries: number) {
    const { stream, group, deadLetterStream } = this.options;
    const reason = this.failures.get(entry.id) ?? UNKNOWN_REASON;
    await this.redis
      .multi()
      .xadd(
        deadLetterStream,
        '*',
        'id',
        entry.id,
        'deliveries',
        String(deliveries),
        'reason',
        reason,
        'fields',
        JSON.stringify(entry.fields),
      )
      .xack(stream, group, entry.id)
      .exec();
    this.failures.delete(entry.id);
  }
}

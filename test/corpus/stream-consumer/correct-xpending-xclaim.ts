/**
 * @correct Finds idle entries with XPENDING's IDLE filter (which gives delivery counts before any claim) instead of XAUTOCLAIM, dead-letters an entry once maxDeliveries deliveries are spent with a Lua script that re-checks it is still idle and pending before XADD + XACK, claims the others with XCLAIM (deleted entries simply do not come back), handles a batch's entries concurrently, skips the handler when the idempotency record already exists, keeps records in `<stream>:idem:<id>` keys written by a Lua commit, and trims in one Lua-free pass over XINFO GROUPS and every group's XPENDING summary. Staff order: partitions by a djb2 hash with a murmur3 finalizer, puts the key first in published fields, takes the lease with a plain SET NX PX after a Lua renew (token = consumer name + UUID) under `<stream>:owner:<group>`, takes over with XPENDING over every pending entry and XCLAIM at min-idle 0, and handles a batch one after another only in exclusive mode.
 */
import type { Redis } from 'ioredis';

export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

export interface Effect {
  key: string;
  value: string;
}

export interface StreamWorkerOptions {
  redis: Redis;
  stream: string;
  group: string;
  consumer: string;
  handler: (entry: StreamEntry) => Promise<unknown>;
  maxDeliveries: number;
  claimIdleMs: number;
  deadLetterStream: string;
  batchSize?: number;
  idempotent?: boolean;
  exclusive?: { leaseMs: number };
}

export interface PublishOptions {
  stream: string;
  partitions: number;
  key: string;
  fields: Record<string, string>;
}

export interface RunResult {
  processed: number;
  retried: number;
  deadLettered: number;
}

type RawEntry = [string, string[] | null];

// Dead-letters only if the entry is still pending and idle (nobody claimed it since we looked).
const DEAD_LETTER = `
local p = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[2], ARGV[3], ARGV[3], 1)
if #p == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'id', ARGV[3], 'deliveries', tostring(p[1][4]), 'reason', ARGV[4], 'fields', ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
return 1
`;

const COMMIT = `
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  for i = 3, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 1]) end
end
return redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
`;

const RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
`;

const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`;

export function partitionOf(key: string, partitions: number): number {
  let h = 5381;
  for (const ch of key) h = (Math.imul(h, 33) ^ ch.codePointAt(0)!) | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % partitions;
}

export async function publish(redis: Redis, o: PublishOptions): Promise<string> {
  const rest = Object.entries(o.fields).filter(([name]) => name !== 'key');
  return (await redis.xadd(`${o.stream}:${partitionOf(o.key, o.partitions)}`, '*', 'key', o.key, ...rest.flat()))!;
}

const toFields = (flat: string[]) => Object.fromEntries(flat.flatMap((v, i) => (i % 2 ? [] : [[v, flat[i + 1]!]])));

const idKey = (id: string) => id.split('-').map(BigInt) as [bigint, bigint];
const before = (a: string, b: string) => {
  const [am, as] = idKey(a);
  const [bm, bs] = idKey(b);
  return am < bm || (am === bm && as < bs);
};

export class StreamWorker {
  private readonly o: StreamWorkerOptions;
  private readonly lastError = new Map<string, string>();
  private created = false;
  private readonly token = `${crypto.randomUUID()}`;
  private takeover = false;

  constructor(options: StreamWorkerOptions) {
    this.o = { batchSize: 10, ...options };
  }

  async runOnce(): Promise<RunResult> {
    const { redis, stream, group, consumer, claimIdleMs, maxDeliveries } = this.o;
    const batch = this.o.batchSize!;
    const out: RunResult = { processed: 0, retried: 0, deadLettered: 0 };
    if (this.o.exclusive) {
      const lease = `${stream}:owner:${group}`;
      const { leaseMs } = this.o.exclusive;
      if (!(await redis.eval(RENEW, 1, lease, this.token, leaseMs))) {
        if (!(await redis.set(lease, this.token, 'PX', leaseMs, 'NX'))) return out;
        this.takeover = true;
      }
    }
    if (!this.created) {
      await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM').catch((error: Error) => {
        if (!/^BUSYGROUP/.test(error.message)) throw error;
      });
      this.created = true;
    }
    // A takeover re-delivers whatever the previous holder left pending, however fresh.
    const minIdle = this.takeover ? 0 : claimIdleMs;
    const idle = (await redis.xpending(stream, group, 'IDLE', minIdle, '-', '+', batch)) as [
      string,
      string,
      number,
      number,
    ][];
    const exhausted = idle.filter(([, , , count]) => count >= maxDeliveries);
    const retry = idle.filter(([, , , count]) => count < maxDeliveries).map(([id]) => id);
    for (const [id] of exhausted) {
      const [[, flat] = [id, null]] = (await redis.xrange(stream, id, id)) as RawEntry[];
      if (!flat) {
        // Deleted or trimmed from the stream: nothing to copy, nothing to hand over.
        await redis.xack(stream, group, id);
        continue;
      }
      const reason = this.lastError.get(id) ?? 'exceeded maxDeliveries';
      const moved = await redis.eval(
        DEAD_LETTER,
        2,
        stream,
        this.o.deadLetterStream,
        group,
        minIdle,
        id,
        reason,
        JSON.stringify(toFields(flat)),
      );
      this.lastError.delete(id);
      if (moved === 1) out.deadLettered++;
    }
    const claimed = retry.length
      ? ((await redis.xclaim(stream, group, consumer, minIdle, ...retry)) as RawEntry[])
      : [];
    const live = claimed.filter((entry): entry is [string, string[]] => entry?.[1] != null);
    out.retried = live.length;

    if (this.takeover && idle.length >= batch) {
      for (const [id, flat] of live) if (await this.handle({ id, fields: toFields(flat) })) out.processed++;
      return out;
    }
    this.takeover = false;
    const fresh = (await redis.xreadgroup('GROUP', group, consumer, 'COUNT', batch, 'STREAMS', stream, '>')) as
      | [string, [string, string[]][]][]
      | null;
    const all = [...live, ...(fresh?.[0]?.[1] ?? [])];
    if (this.o.exclusive) {
      for (const [id, flat] of all) if (await this.handle({ id, fields: toFields(flat) })) out.processed++;
      return out;
    }
    const done = await Promise.all(all.map(([id, flat]) => this.handle({ id, fields: toFields(flat) })));
    out.processed = done.filter(Boolean).length;
    return out;
  }

  async release(): Promise<void> {
    if (this.o.exclusive) await this.o.redis.eval(RELEASE, 1, `${this.o.stream}:owner:${this.o.group}`, this.token);
  }

  private record(id: string) {
    return `${this.o.stream}:idem:${id}`;
  }

  private async handle(entry: StreamEntry): Promise<boolean> {
    const { redis, stream, group, claimIdleMs, maxDeliveries } = this.o;
    if (this.o.idempotent && (await redis.exists(this.record(entry.id)))) {
      await redis.xack(stream, group, entry.id);
      return true;
    }
    let result: unknown;
    try {
      result = await this.o.handler(entry);
    } catch (error) {
      this.lastError.set(entry.id, (error as Error)?.message ?? String(error));
      return false;
    }
    this.lastError.delete(entry.id);
    if (!this.o.idempotent) {
      await redis.xack(stream, group, entry.id);
      return true;
    }
    const effects = ([] as Effect[]).concat((result as Effect | Effect[] | undefined) ?? []);
    await redis.eval(
      COMMIT,
      2 + effects.length,
      stream,
      this.record(entry.id),
      ...effects.map((e) => e.key),
      group,
      claimIdleMs * (maxDeliveries + 1) * 4,
      entry.id,
      ...effects.map((e) => e.value),
    );
    return true;
  }

  async trim(): Promise<number> {
    const { redis, stream } = this.o;
    if (!(await redis.exists(stream))) return 0;
    const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
    let min: string | null = null;
    for (const info of groups) {
      const get = (name: string) => String(info[info.indexOf(name) + 1]);
      const [count, smallest] = (await redis.xpending(stream, get('name'))) as [number, string | null];
      const point = count > 0 && smallest ? smallest : get('last-delivered-id');
      if (min === null || before(point, min)) min = point;
    }
    return min === null ? 0 : redis.xtrim(stream, 'MINID', min);
  }
}

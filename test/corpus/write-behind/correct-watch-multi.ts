/**
 * @correct No Lua at all: the backlog check and the write, and the settle step (version compare, failure counts, lock extend or release), are optimistic WATCH/MULTI transactions retried on abort, with every transaction on a client queued one at a time because WATCH belongs to the connection.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface WriteBehindOptions {
  redis: Redis;
  /** Upserts the entries into the database. Idempotent: writing the same value twice is harmless. */
  writeBatch: (entries: Array<{ key: string; value: Json }>) => Promise<void>;
  keyPrefix: string;
  maxBatchSize: number;
  /** Backpressure: with this many keys pending, a write to a new key rejects. No limit when absent. */
  maxPending?: number;
  /** Flushes in which a key's write may fail before the key is parked. Default 5. */
  maxAttempts?: number;
  /** A flush that has not finished after this long is presumed dead. Default 30 000. */
  flushTimeoutMs?: number;
}

export interface FlushResult {
  written: number;
  failed: number;
}

type Multi = ReturnType<Redis['multi']>;

// A WATCH lives on the connection and any EXEC on it ends every WATCH, whoever sent it. So
// every transaction this module sends over one client (all instances sharing it included)
// runs alone, one after the other. The queue is only held for the Redis round trips, never
// across a database call.
const queues = new WeakMap<Redis, Promise<unknown>>();
function exclusive<R>(redis: Redis, task: () => Promise<R>): Promise<R> {
  const previous = queues.get(redis) ?? Promise.resolve();
  const run = previous.then(task, task);
  queues.set(redis, run.catch(() => undefined));
  return run;
}

/** Replies of an EXEC, or null when a watched key changed and the transaction was aborted. */
async function execOrAbort<T extends unknown[]>(multi: Multi): Promise<T | null> {
  const replies = await multi.exec();
  if (!replies) return null;
  return replies.map(([error, reply]) => {
    if (error) throw error;
    return reply;
  }) as T;
}

/**
 * Redis holds everything, under the prefix:
 *   <prefix>:values    hash  key -> JSON of the latest value (the cache itself)
 *   <prefix>:pending   hash  key -> version (random) of the latest write not yet in the database
 *   <prefix>:attempts  hash  key -> flushes in which that write failed
 *   <prefix>:flush     lock: one flusher at a time across all instances
 * User keys are hash fields, so no user key can collide with the bookkeeping.
 */
export class WriteBehindCache {
  private readonly redis: Redis;
  private readonly keys;
  private readonly maxAttempts: number;
  private readonly flushTimeoutMs: number;
  private lastFlush: Promise<unknown> = Promise.resolve();
  private flushing = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly options: WriteBehindOptions) {
    if (!Number.isInteger(options.maxBatchSize) || options.maxBatchSize < 1) {
      throw new RangeError(`maxBatchSize must be a positive integer, got ${options.maxBatchSize}`);
    }
    this.redis = options.redis;
    // The prefix repeated as a hash tag: one Redis Cluster slot for the keys a transaction touches.
    const p = `${options.keyPrefix}:{${options.keyPrefix}}`;
    this.keys = { values: `${p}:values`, pending: `${p}:pending`, attempts: `${p}:attempts`, lock: `${p}:flush` };
    this.maxAttempts = options.maxAttempts ?? 5;
    this.flushTimeoutMs = options.flushTimeoutMs ?? 30_000;
  }

  async set(key: string, value: Json): Promise<void> {
    await this.write(key, 'set', JSON.stringify(value));
  }

  async get(key: string): Promise<Json | null> {
    const raw = await this.redis.hget(this.keys.values, key);
    return raw === null ? null : (JSON.parse(raw) as Json);
  }

  async increment(key: string, by = 1): Promise<number> {
    if (!Number.isSafeInteger(by)) throw new TypeError(`increment() takes an integer, got ${by}`);
    // HINCRBY adds inside Redis, so concurrent increments from any instance all count.
    return this.write(key, 'incr', String(by));
  }

  async pending(): Promise<number> {
    return this.redis.hlen(this.keys.pending);
  }

  flush(): Promise<FlushResult> {
    this.flushing++;
    const run = this.lastFlush.then(() => this.flushOnce());
    this.lastFlush = run.catch(() => undefined).finally(() => this.flushing--);
    return run;
  }

  start(intervalMs: number): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (this.flushing === 0) this.flush().catch(() => undefined);
    }, intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private async write(key: string, mode: 'set' | 'incr', payload: string): Promise<number> {
    const { values, pending, attempts } = this.keys;
    const { maxPending } = this.options;
    const version = randomBytes(8).toString('hex');
    const queue = (m: Multi) => {
      if (mode === 'incr') m.hincrby(values, key, payload);
      else m.hset(values, key, payload);
      return m.hset(pending, key, version).hdel(attempts, key);
    };
    return exclusive(this.redis, async () => {
      if (maxPending === undefined) {
        const replies = await execOrAbort<[number]>(queue(this.redis.multi()));
        if (!replies) throw new Error('a Redis transaction was aborted');
        return Number(replies[0]);
      }
      // Optimistic: watch the backlog, check it, and write only if nobody changed it since.
      for (;;) {
        await this.redis.watch(pending);
        let known: number;
        let size: number;
        try {
          [known, size] = await Promise.all([this.redis.hexists(pending, key), this.redis.hlen(pending)]);
        } catch (error) {
          await this.redis.unwatch().catch(() => undefined);
          throw error;
        }
        if (known === 0 && size >= maxPending) {
          await this.redis.unwatch();
          throw new Error(
            `write-behind backlog full: ${maxPending} keys pending (maxPending ${maxPending}); "${key}" was not written. Retry later`,
          );
        }
        const replies = await execOrAbort<[number]>(queue(this.redis.multi()));
        if (replies) return Number(replies[0]);
        // Another writer changed the backlog in between: look again.
      }
    });
  }

  private async flushOnce(): Promise<FlushResult> {
    const result: FlushResult = { written: 0, failed: 0 };
    if ((await this.pending()) === 0) return result;

    // One flusher per prefix; the TTL frees the lock if its holder dies, each batch extends it.
    const token = randomBytes(8).toString('hex');
    const locked = await this.redis.set(this.keys.lock, token, 'PX', this.flushTimeoutMs, 'NX');
    if (locked !== 'OK') return result;

    let released = false;
    try {
      const read = await exclusive(this.redis, () =>
        execOrAbort<[string[], Record<string, string>]>(this.redis.multi().hkeys(this.keys.pending).hgetall(this.keys.attempts)),
      );
      if (!read) throw new Error('a Redis transaction was aborted');
      const [keys, attempts] = read;
      const due = keys.filter((key) => Number(attempts[key] ?? 0) < this.maxAttempts);

      for (let i = 0; i < due.length; i += this.options.maxBatchSize) {
        const batch = due.slice(i, i + this.options.maxBatchSize);
        const last = i + this.options.maxBatchSize >= due.length;
        // Values and versions in one transaction, so each value is paired with its version.
        const pair = await exclusive(this.redis, () =>
          execOrAbort<[Array<string | null>, Array<string | null>]>(
            this.redis.multi().hmget(this.keys.values, ...batch).hmget(this.keys.pending, ...batch),
          ),
        );
        if (!pair) throw new Error('a Redis transaction was aborted');
        const [values, versions] = pair;
        const entries: Array<{ key: string; value: Json }> = [];
        const stamps: Array<[string, string]> = [];
        batch.forEach((key, j) => {
          if (versions[j] == null || values[j] == null) return;
          entries.push({ key, value: JSON.parse(values[j]!) as Json });
          stamps.push([key, versions[j]!]);
        });

        let outcome: 'accepted' | 'refused' = 'accepted';
        if (entries.length > 0) {
          try {
            await this.options.writeBatch(entries);
            result.written += entries.length;
          } catch {
            // Still pending: the next flush re-reads the latest value from Redis and retries.
            outcome = 'refused';
            result.failed += entries.length;
          }
        }
        const stillOurs = await this.settle(token, outcome, last, stamps);
        released = last;
        if (!stillOurs) break;
      }
    } finally {
      if (!released) await this.settle(token, 'accepted', true, []).catch(() => undefined);
    }
    return result;
  }

  /**
   * In one optimistic transaction: forget the accepted keys that still hold the version we
   * wrote (a newer write keeps its key pending), or count a failure for refused ones; then
   * extend or release the lock if it is still ours. Returns whether it was.
   */
  private settle(token: string, outcome: 'accepted' | 'refused', release: boolean, stamps: Array<[string, string]>) {
    const { pending, attempts, lock } = this.keys;
    return exclusive(this.redis, async () => {
      for (;;) {
        await this.redis.watch(pending, lock);
        let current: Array<string | null>;
        let holder: string | null;
        try {
          [current, holder] = await Promise.all([
            stamps.length ? this.redis.hmget(pending, ...stamps.map(([key]) => key)) : Promise.resolve([]),
            this.redis.get(lock),
          ]);
        } catch (error) {
          await this.redis.unwatch().catch(() => undefined);
          throw error;
        }
        const m = this.redis.multi();
        let queued = 0;
        stamps.forEach(([key, version], i) => {
          if (current[i] !== version) return;
          if (outcome === 'accepted') m.hdel(pending, key).hdel(attempts, key);
          else m.hincrby(attempts, key, 1);
          queued++;
        });
        const ours = holder === token;
        if (ours) {
          if (release) m.del(lock);
          else m.pexpire(lock, this.flushTimeoutMs);
          queued++;
        }
        if (queued === 0) {
          // Nothing to do: the queued MULTI is never sent.
          await this.redis.unwatch();
          return ours;
        }
        if (await execOrAbort(m)) return ours;
        // A write or the lock changed in between: read again and retry.
      }
    });
  }
}

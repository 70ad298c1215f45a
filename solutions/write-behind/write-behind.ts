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

// A write under a backlog limit: the check and the write in one script, because two writers
// that both saw "one slot left" would both take it. Without a limit a MULTI does the same work.
// A write clears the key's failure count, so a parked key gets a fresh start with its new value.
const LIMITED_WRITE = `
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[5]) then
  return {0, 0}
end
local result = 0
if ARGV[2] == 'incr' then
  result = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[3])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('HDEL', KEYS[3], ARGV[1])
return {1, result}`;

// What a flush does after the database answered for one batch, in one step:
// - accepted: forget each key, but only if it still holds the version we wrote. An
//   unconditional HDEL is the classic write-behind bug: a write that arrived while the batch
//   was in flight would be marked as flushed and never reach the database.
// - refused: count a failure against each key that still holds that version (a newer write
//   already reset its count and brings a new value to try).
// Then extend our flush lock, or release it after the last batch. Returns 0 if the lock is no
// longer ours: we were presumed dead and must stop.
const SETTLE = `
for i = 5, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    if ARGV[3] == 'accepted' then
      redis.call('HDEL', KEYS[1], ARGV[i])
      redis.call('HDEL', KEYS[2], ARGV[i])
    else
      redis.call('HINCRBY', KEYS[2], ARGV[i], 1)
    end
  end
end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
if ARGV[4] == 'release' then redis.call('DEL', KEYS[3]) else redis.call('PEXPIRE', KEYS[3], ARGV[2]) end
return 1`;

type Multi = ReturnType<Redis['multi']>;

/**
 * Writes land in Redis at once and reach the database later, in batches.
 *
 * Redis holds everything, so any instance can flush what another one left (<base> is
 * `<prefix>:{<prefix>}`, see the constructor):
 *   <base>:values    hash  key -> JSON of the latest value (the cache itself)
 *   <base>:pending   hash  key -> version (random) of the latest write not yet in the database
 *   <base>:attempts  hash  key -> flushes in which that write failed
 *   <base>:flush     lock: one flusher at a time across all instances
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
    // On a Redis Cluster a MULTI or a script may only touch keys of one slot (else CROSSSLOT),
    // and ours touch up to three of these keys at once. Only the part inside the first {…} is
    // hashed, so repeating the prefix as a hash tag puts all four in one slot, whatever the
    // prefix, while caches with other prefixes land elsewhere. A prefix with a tag of its own
    // ({tenant:7}:profile) keeps it: that tag comes first.
    const p = options.keyPrefix;
    const base = `${p}:{${p}}`;
    this.keys = {
      values: `${base}:values`,
      pending: `${base}:pending`,
      attempts: `${base}:attempts`,
      lock: `${base}:flush`,
    };
    this.maxAttempts = options.maxAttempts ?? 5;
    this.flushTimeoutMs = options.flushTimeoutMs ?? 30_000;
    this.redis.defineCommand('writeBehindLimitedWrite', { numberOfKeys: 3, lua: LIMITED_WRITE });
    this.redis.defineCommand('writeBehindSettle', { numberOfKeys: 3, lua: SETTLE });
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
    // HINCRBY adds inside Redis: reading the total in TypeScript and writing it back would let
    // two concurrent increments read the same total and lose one of them.
    return this.write(key, 'incr', String(by));
  }

  async pending(): Promise<number> {
    return this.redis.hlen(this.keys.pending);
  }

  /**
   * Writes every pending key once, in batches of at most maxBatchSize. Flushes of one instance
   * run one after the other, so the flush a caller awaits covers every write made before the
   * call. Another instance's flush is never waited for: while it holds the lock, this one skips.
   */
  flush(): Promise<FlushResult> {
    this.flushing++;
    const run = this.lastFlush.then(() => this.flushOnce());
    this.lastFlush = run.catch(() => undefined).finally(() => this.flushing--);
    return run;
  }

  start(intervalMs: number): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      // A tick that finds a flush still running skips it: queueing flushes behind a slow
      // database only piles up work. Errors wait for the next tick; the data is safe in Redis.
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
    // A random version per write: the flush compares it to know whether the value it wrote is
    // still the latest.
    const version = randomBytes(8).toString('hex');
    const { maxPending } = this.options;
    if (maxPending === undefined) {
      const m = this.redis.multi();
      if (mode === 'incr') m.hincrby(values, key, payload);
      else m.hset(values, key, payload);
      const [result] = await this.exec<[number]>(m.hset(pending, key, version).hdel(attempts, key));
      return Number(result);
    }
    const run = (this.redis as unknown as Record<string, (...args: unknown[]) => Promise<[number, number]>>).writeBehindLimitedWrite!;
    const [status, result] = await run(values, pending, attempts, key, mode, payload, version, maxPending);
    if (status === 0) {
      throw new Error(
        `write-behind backlog full: ${maxPending} keys pending (maxPending ${maxPending}); ` +
          `the database is not keeping up, so "${key}" was not written. Retry later`,
      );
    }
    return Number(result);
  }

  private async flushOnce(): Promise<FlushResult> {
    const result: FlushResult = { written: 0, failed: 0 };
    if ((await this.pending()) === 0) return result;

    // Two flushers that both read version A of a key, while the other writes the newer B, can
    // land A after B in the database. A lock makes one flusher the only writer; its TTL frees
    // it if that flusher dies, and each batch extends it while the flusher is alive.
    const token = randomBytes(8).toString('hex');
    const locked = await this.redis.set(this.keys.lock, token, 'PX', this.flushTimeoutMs, 'NX');
    if (locked !== 'OK') return result;

    let released = false;
    try {
      const [keys, attempts] = await this.exec<[string[], Record<string, string>]>(
        this.redis.multi().hkeys(this.keys.pending).hgetall(this.keys.attempts),
      );
      // Parked keys stay pending (they are not in the database) but are no longer tried.
      const due = keys.filter((key) => Number(attempts[key] ?? 0) < this.maxAttempts);

      for (let i = 0; i < due.length; i += this.options.maxBatchSize) {
        const batch = due.slice(i, i + this.options.maxBatchSize);
        const last = i + this.options.maxBatchSize >= due.length;
        // Value and version in one transaction: read apart, a write in between would pair an
        // old value with the new version, and the settle step would then forget the new value.
        const [values, versions] = await this.exec<[Array<string | null>, Array<string | null>]>(
          this.redis.multi().hmget(this.keys.values, ...batch).hmget(this.keys.pending, ...batch),
        );
        const entries: Array<{ key: string; value: Json }> = [];
        const stamps: string[] = [];
        batch.forEach((key, j) => {
          if (versions[j] == null || values[j] == null) return;
          entries.push({ key, value: JSON.parse(values[j]!) as Json });
          stamps.push(key, versions[j]!);
        });

        let outcome: 'accepted' | 'refused' = 'accepted';
        if (entries.length > 0) {
          try {
            await this.options.writeBatch(entries);
            result.written += entries.length;
          } catch {
            // The keys stay pending and the next flush is the retry. It reads the latest value
            // from Redis, so a retry can never put an older value over a newer one.
            outcome = 'refused';
            result.failed += entries.length;
          }
        }
        const stillOurs = await this.settle(token, outcome, last, stamps);
        released = last;
        if (!stillOurs) break;
      }
    } finally {
      if (!released) await this.settle(token, 'accepted', true, []);
    }
    return result;
  }

  private async settle(token: string, outcome: 'accepted' | 'refused', release: boolean, stamps: string[]) {
    const { pending, attempts, lock } = this.keys;
    const run = (this.redis as unknown as Record<string, (...args: unknown[]) => Promise<number>>).writeBehindSettle!;
    return (await run(pending, attempts, lock, token, this.flushTimeoutMs, outcome, release ? 'release' : 'extend', ...stamps)) === 1;
  }

  private async exec<T extends unknown[]>(multi: Multi): Promise<T> {
    const replies = await multi.exec();
    if (!replies) throw new Error('a Redis transaction was aborted');
    return replies.map(([error, reply]) => {
      if (error) throw error;
      return reply;
    }) as T;
  }
}

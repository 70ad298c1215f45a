/**
 * @correct Instead of one flush lock per prefix, a lease per key (a hash of key -> "expiry token") claimed in one script together with the values and versions, versions from an INCR sequence instead of random tokens, and every write a single Lua script, so several instances flush disjoint keys at the same time.
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

// Every write: (backlog check,) value, a fresh version from the sequence, failure count reset,
// all in one script. ARGV[4] is the backlog limit, '' for none.
const WRITE = `
if ARGV[4] ~= '' and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0
   and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[4]) then
  return {0, 0}
end
local result = 0
if ARGV[2] == 'incr' then
  result = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[3])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
local version = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[2], ARGV[1], tostring(version))
redis.call('HDEL', KEYS[3], ARGV[1])
return {1, result}`;

// Claim up to ARGV[3] pending keys that are not parked and that no live lease holds; lease
// them to ARGV[5] until ARGV[2] (ms), and return key, value, version for each. Reading value
// and version in the same atomic step as the claim pairs them correctly.
const CLAIM = `
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])
local maxAttempts = tonumber(ARGV[4])
local out = {}
local taken = 0
for _, key in ipairs(redis.call('HKEYS', KEYS[1])) do
  if taken >= limit then break end
  local tries = tonumber(redis.call('HGET', KEYS[2], key) or '0')
  if tries < maxAttempts then
    local lease = redis.call('HGET', KEYS[3], key)
    local free = true
    if lease then
      local expiry = tonumber(string.match(lease, '^(%d+)'))
      if expiry and expiry > now then free = false end
    end
    local value = redis.call('HGET', KEYS[4], key)
    if free and value then
      redis.call('HSET', KEYS[3], key, ARGV[2] .. ' ' .. ARGV[5])
      out[#out + 1] = key
      out[#out + 1] = value
      out[#out + 1] = redis.call('HGET', KEYS[1], key)
      taken = taken + 1
    end
  end
end
return out`;

// After the database answered for one batch: forget a key only if it still holds the version
// we sent (a write during the batch keeps it pending); on refusal count one failure against
// the keys whose version we tried. ARGV[1] is 'accepted' or 'refused'.
const SETTLE = `
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    if ARGV[1] == 'accepted' then
      redis.call('HDEL', KEYS[1], ARGV[i])
      redis.call('HDEL', KEYS[2], ARGV[i])
    else
      redis.call('HINCRBY', KEYS[2], ARGV[i], 1)
    end
  end
end
return 1`;

// At the end of a flush, drop the leases we still hold (never someone else's).
const RELEASE = `
local suffix = ' ' .. ARGV[1]
for i = 2, #ARGV do
  local lease = redis.call('HGET', KEYS[1], ARGV[i])
  if lease and string.sub(lease, -#suffix) == suffix then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 1`;

/**
 * Redis holds everything, under the prefix:
 *   <prefix>:values    hash  key -> JSON of the latest value (the cache itself)
 *   <prefix>:pending   hash  key -> version of the latest write not yet in the database
 *   <prefix>:attempts  hash  key -> flushes in which that write failed
 *   <prefix>:leases    hash  key -> "<expiry ms> <flush token>": who is flushing the key
 *   <prefix>:seq       the version sequence
 * User keys are hash fields, so no user key can collide with the bookkeeping. Nothing has a TTL;
 * a lease ends by its expiry, so a dead flusher's keys are free again flushTimeoutMs later.
 */
export class WriteBehindCache {
  private readonly redis: Redis;
  private readonly keys;
  private readonly maxAttempts: number;
  private readonly flushTimeoutMs: number;
  private chain: Promise<unknown> = Promise.resolve();
  private inFlight = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly options: WriteBehindOptions) {
    if (!Number.isInteger(options.maxBatchSize) || options.maxBatchSize < 1) {
      throw new RangeError(`maxBatchSize must be a positive integer, got ${options.maxBatchSize}`);
    }
    this.redis = options.redis;
    // The prefix repeated as a hash tag: one Redis Cluster slot for all five keys, which the
    // scripts touch together.
    const p = `${options.keyPrefix}:{${options.keyPrefix}}`;
    this.keys = {
      values: `${p}:values`,
      pending: `${p}:pending`,
      attempts: `${p}:attempts`,
      leases: `${p}:leases`,
      seq: `${p}:seq`,
    };
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
    // HINCRBY adds inside Redis, so concurrent increments from any instance all count, and the
    // database later receives the total.
    return this.write(key, 'incr', String(by));
  }

  async pending(): Promise<number> {
    return this.redis.hlen(this.keys.pending);
  }

  /** Chained per instance: the flush a caller awaits starts after the one in flight ends. */
  flush(): Promise<FlushResult> {
    this.inFlight++;
    const run = this.chain.then(() => this.flushOnce());
    this.chain = run.catch(() => undefined).finally(() => this.inFlight--);
    return run;
  }

  start(intervalMs: number): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (this.inFlight === 0) this.flush().catch(() => undefined);
    }, intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private async write(key: string, mode: 'set' | 'incr', payload: string): Promise<number> {
    const { values, pending, attempts, seq } = this.keys;
    const { maxPending } = this.options;
    const [status, result] = (await this.redis.eval(
      WRITE, 4, values, pending, attempts, seq, key, mode, payload, maxPending === undefined ? '' : String(maxPending),
    )) as [number, number];
    if (status === 0) {
      throw new Error(
        `write-behind backlog full: ${maxPending} keys pending (maxPending ${maxPending}); "${key}" was not written. Retry later`,
      );
    }
    return Number(result);
  }

  private async flushOnce(): Promise<FlushResult> {
    const result: FlushResult = { written: 0, failed: 0 };
    if ((await this.pending()) === 0) return result;
    const { values, pending, attempts, leases } = this.keys;
    const token = randomBytes(8).toString('hex');
    // Keys stay leased to this flush until it ends, so it tries each key at most once and the
    // claim loop ends; keys another instance is flushing are skipped, never waited for.
    const held: string[] = [];
    try {
      for (;;) {
        const expiry = Date.now() + this.flushTimeoutMs;
        const claimed = (await this.redis.eval(
          CLAIM, 4, pending, attempts, leases, values,
          String(Date.now()), String(expiry), String(this.options.maxBatchSize), String(this.maxAttempts), token,
        )) as Array<string | null>;
        if (claimed.length === 0) break;
        const entries: Array<{ key: string; value: Json }> = [];
        const stamps: string[] = [];
        for (let i = 0; i < claimed.length; i += 3) {
          const key = claimed[i]!;
          held.push(key);
          entries.push({ key, value: JSON.parse(claimed[i + 1]!) as Json });
          stamps.push(key, claimed[i + 2] ?? '');
        }
        let outcome: 'accepted' | 'refused' = 'accepted';
        try {
          await this.options.writeBatch(entries);
          result.written += entries.length;
        } catch {
          // Still pending; the next flush re-reads the latest value and tries again.
          outcome = 'refused';
          result.failed += entries.length;
        }
        await this.redis.eval(SETTLE, 2, pending, attempts, outcome, ...stamps);
      }
    } finally {
      if (held.length > 0) await this.redis.eval(RELEASE, 1, leases, token, ...held).catch(() => undefined);
    }
    return result;
  }
}

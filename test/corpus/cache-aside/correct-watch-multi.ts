/**
 * @correct No Lua at all: a version counter per id bumped by a MULTI/EXEC on write, and fills made conditional with WATCH on the versions, a second read of them and one MULTI/EXEC, every WATCH…EXEC serialised per client because WATCH belongs to the connection.
 */
import type { Redis } from 'ioredis';
import type { ZodType } from 'zod';

export interface CacheAsideOptions<T> {
  redis: Redis;
  load: (id: string) => Promise<T | null>;
  save: (id: string, value: T) => Promise<void>;
  keyPrefix: string;
  ttlSeconds: number;
  jitterSeconds?: number;
  negativeTtlSeconds?: number;
  schema?: ZodType<T>;
}

// The entry under `${keyPrefix}:${id}`: a JSON envelope, so falsy values and "not found" are
// ordinary hits and never confused with a miss.
type Entry<T> = { v: T | null };

// Must outlive the slowest load, or a reader could see "no version" before and after a write.
const VERSION_TTL_SECONDS = 3_600;

// WATCH is a property of the connection, and any EXEC on it (ours or another caller's) ends
// every WATCH. So every transaction this module sends over a client goes through one queue
// per client, shared by all CacheAside instances that use it.
const queues = new WeakMap<Redis, Promise<unknown>>();
function exclusive<R>(redis: Redis, task: () => Promise<R>): Promise<R> {
  const previous = queues.get(redis) ?? Promise.resolve();
  const run = previous.then(task, task);
  queues.set(redis, run.catch(() => undefined));
  return run;
}

type Miss = { id: string; key: string; versionKey: string; version: string | null };

export class CacheAside<T> {
  constructor(private readonly options: CacheAsideOptions<T>) {}

  async get(id: string): Promise<T | null> {
    const [value] = await this.getMany([id]);
    return value ?? null;
  }

  async getMany(ids: string[]): Promise<Array<T | null>> {
    const unique = [...new Set(ids)];
    const keys = unique.map((id) => this.key(id));
    const versionKeys = unique.map((id) => this.versionKey(id));
    // One round trip for the lookups, entries and versions together. Redis down means every
    // id is a miss and nothing is written back.
    const replies = unique.length
      ? await this.options.redis.mget(...keys, ...versionKeys).catch(() => null)
      : [];
    const found = new Map<string, T | null>();
    const misses: Miss[] = [];
    unique.forEach((id, i) => {
      const entry = replies ? this.decode(replies[i]) : undefined;
      if (entry) found.set(id, entry.v);
      else misses.push({ id, key: keys[i]!, versionKey: versionKeys[i]!, version: replies?.[unique.length + i] ?? null });
    });

    if (misses.length > 0) {
      const loaded: Array<T | null> = [];
      for (const { id } of misses) loaded.push(await this.options.load(id));
      misses.forEach(({ id }, i) => found.set(id, loaded[i] ?? null));
      if (replies) await this.fill(misses, loaded).catch(() => undefined);
    }
    return ids.map((id) => found.get(id) ?? null);
  }

  async set(id: string, value: T): Promise<void> {
    // Database first, then invalidate; never SET the new value into the cache.
    await this.options.save(id, value);
    await this.invalidate(id);
  }

  async invalidate(id: string): Promise<void> {
    const { redis } = this.options;
    // INCR, EXPIRE and DEL in one transaction: the version key always has a TTL, and a reader
    // that read the old version can no longer fill.
    const replies = await exclusive(redis, () =>
      redis.multi().incr(this.versionKey(id)).expire(this.versionKey(id), VERSION_TTL_SECONDS).del(this.key(id)).exec(),
    );
    const failed = replies?.find(([error]) => error);
    if (!replies || failed) throw failed?.[0] ?? new Error('invalidate: transaction aborted');
  }

  private key(id: string) {
    return `${this.options.keyPrefix}:${id}`;
  }

  // '#' instead of ':' after the prefix: no id can make an entry key equal to a version key.
  private versionKey(id: string) {
    return `${this.options.keyPrefix}#version:${id}`;
  }

  private decode(raw: string | null | undefined): Entry<T> | undefined {
    if (raw == null) return undefined;
    try {
      const entry: unknown = JSON.parse(raw);
      if (typeof entry !== 'object' || entry === null || !('v' in entry)) return undefined;
      const value = (entry as { v: unknown }).v;
      if (value === null) return { v: null };
      if (!this.options.schema) return { v: value as T };
      const checked = this.options.schema.safeParse(value);
      return checked.success ? { v: checked.data } : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * WATCH the versions of the misses, read them again, and fill the unchanged ones in one
   * MULTI/EXEC. A write between the WATCH and the EXEC aborts the EXEC; a write before the
   * WATCH shows up in the second read. Three round trips, whatever the number of misses.
   */
  private async fill(misses: Miss[], loaded: Array<T | null>) {
    const fills: Array<{ miss: Miss; value: T | null; ttl: number }> = [];
    misses.forEach((miss, i) => {
      const value = loaded[i] ?? null;
      const ttl = this.ttlFor(value);
      if (ttl !== null) fills.push({ miss, value, ttl });
    });
    if (fills.length === 0) return;

    const { redis } = this.options;
    await exclusive(redis, async () => {
      const versionKeys = fills.map(({ miss }) => miss.versionKey);
      await redis.watch(...versionKeys);
      try {
        const now = await redis.mget(...versionKeys);
        const unchanged = fills.filter(({ miss }, i) => (now[i] ?? null) === miss.version);
        if (unchanged.length === 0) {
          await redis.unwatch();
          return;
        }
        const multi = redis.multi();
        for (const { miss, value, ttl } of unchanged) {
          const entry: Entry<T> = { v: value };
          multi.set(miss.key, JSON.stringify(entry), 'EX', ttl);
        }
        // null: a watched version changed, a write happened, so we fill nothing.
        await multi.exec();
      } catch (error) {
        await redis.unwatch().catch(() => undefined);
        throw error;
      }
    });
  }

  private ttlFor(value: T | null): number | null {
    const { ttlSeconds, jitterSeconds = 0, negativeTtlSeconds } = this.options;
    if (value === null) return negativeTtlSeconds ?? null;
    return ttlSeconds + Math.floor(Math.random() * (jitterSeconds + 1));
  }
}

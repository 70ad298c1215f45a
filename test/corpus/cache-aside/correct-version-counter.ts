/**
 * @correct Instead of a lease in the entry key, a version counter per id: `invalidate` bumps it (INCR + EXPIRE + DEL in one script), readers read it in the same MGET as the entries, load in parallel, and fill with a script that writes only if the version is unchanged.
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

// The version key must outlive the slowest load: if it expired while a reader was loading, the
// reader could see "no version" before and after a write and fill a stale row.
const VERSION_TTL_SECONDS = 3_600;

// A write: bump the version (with its TTL) and drop the entry, in one atomic step.
const INVALIDATE = `
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])`;

// A fill: only if no write bumped the version since the reader read it ('' = no version key).
// SET with EX, so the entry can never exist without a TTL.
const FILL = `
local current = redis.call('GET', KEYS[2])
if current == false then current = '' end
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1`;

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
    // One round trip: the entries and their versions together. If Redis is down, every id is
    // a miss and nothing is written back.
    const replies = unique.length
      ? await this.options.redis.mget(...keys, ...versionKeys).catch(() => null)
      : [];
    const found = new Map<string, T | null>();
    const misses: Array<{ id: string; key: string; versionKey: string; version: string }> = [];
    unique.forEach((id, i) => {
      const entry = replies ? this.decode(replies[i]) : undefined;
      if (entry) found.set(id, entry.v);
      else misses.push({ id, key: keys[i]!, versionKey: versionKeys[i]!, version: replies?.[unique.length + i] ?? '' });
    });

    if (misses.length > 0) {
      // Loads run together; any failure rejects the call before anything is written.
      const loaded = await Promise.all(misses.map(({ id }) => this.options.load(id)));
      misses.forEach(({ id }, i) => found.set(id, loaded[i] ?? null));
      if (replies) await this.fill(misses, loaded);
    }
    return ids.map((id) => found.get(id) ?? null);
  }

  async set(id: string, value: T): Promise<void> {
    // Database first, then invalidate; never SET the new value into the cache.
    await this.options.save(id, value);
    await this.invalidate(id);
  }

  async invalidate(id: string): Promise<void> {
    await this.options.redis.eval(INVALIDATE, 2, this.key(id), this.versionKey(id), VERSION_TTL_SECONDS);
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

  private async fill(misses: Array<{ key: string; versionKey: string; version: string }>, loaded: Array<T | null>) {
    const pipeline = this.options.redis.pipeline();
    let filling = 0;
    misses.forEach((miss, i) => {
      const value = loaded[i] ?? null;
      const ttl = this.ttlFor(value);
      if (ttl === null) return;
      const entry: Entry<T> = { v: value };
      pipeline.eval(FILL, 2, miss.key, miss.versionKey, miss.version, JSON.stringify(entry), ttl);
      filling++;
    });
    if (filling > 0) await pipeline.exec().catch(() => undefined);
  }

  private ttlFor(value: T | null): number | null {
    const { ttlSeconds, jitterSeconds = 0, negativeTtlSeconds } = this.options;
    if (value === null) return negativeTtlSeconds ?? null;
    return ttlSeconds + Math.floor(Math.random() * (jitterSeconds + 1));
  }
}

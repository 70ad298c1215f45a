import { randomBytes } from 'node:crypto';
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

// What the cache holds under `${keyPrefix}:${id}`: a JSON envelope, so "not found" and a
// falsy value (0, '', false) can never be confused with each other or with a miss.
type Entry<T> = { v: T } | { none: true };

// A reader that misses puts a lease in the key before it reads the database. A write deletes
// the key, and with it the lease; the reader may only fill the key if its own lease is still
// there. That is how "Scaling Memcache at Facebook" (NSDI 2013, section 3.2.1) stops a slow
// reader from putting back a value older than the latest write.
const LEASE = 'lease:';
const LEASE_TTL_MS = 10_000;

// Fill only while our lease is in place; SET with EX in the same command, so no key can ever
// be left without a TTL.
const FILL = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return false`;

// Give up our lease when the load failed, so the next reader can fill at once.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export class CacheAside<T> {
  constructor(private readonly options: CacheAsideOptions<T>) {}

  async get(id: string): Promise<T | null> {
    const [value] = await this.getMany([id]);
    return value as T | null;
  }

  async getMany(ids: string[]): Promise<Array<T | null>> {
    const unique = [...new Set(ids)];
    const keys = unique.map((id) => this.key(id));
    // The cache is an optimisation: if Redis is down, every read goes to the database.
    const cached = await this.options.redis.mget(...keys).catch(() => null);
    const found = new Map<string, T | null>();
    const misses: Array<{ id: string; key: string; lease: string | null }> = [];
    unique.forEach((id, i) => {
      const entry = cached ? this.decode(cached[i]) : undefined;
      if (entry) found.set(id, 'v' in entry ? entry.v : null);
      else misses.push({ id, key: keys[i]!, lease: null });
    });

    if (misses.length > 0) {
      if (cached) await this.takeLeases(misses);
      const loaded = await this.loadAll(misses);
      misses.forEach(({ id }, i) => found.set(id, loaded[i]!));
      if (cached) await this.fill(misses, loaded);
    }
    return ids.map((id) => found.get(id) ?? null);
  }

  async set(id: string, value: T): Promise<void> {
    await this.options.save(id, value);
    // DEL, never SET: two writers that update the cache can finish in the opposite order to
    // their database writes and leave the older value cached until the TTL runs out.
    await this.invalidate(id);
  }

  async invalidate(id: string): Promise<void> {
    await this.options.redis.del(this.key(id));
  }

  private key(id: string) {
    return `${this.options.keyPrefix}:${id}`;
  }

  /** A cached value is a hint, not the truth: anything that does not parse is a miss. */
  private decode(raw: string | null | undefined): Entry<T> | undefined {
    if (!raw || raw.startsWith(LEASE)) return undefined;
    try {
      const entry = JSON.parse(raw) as Entry<T>;
      if ('none' in entry && entry.none === true) return entry;
      if (!('v' in entry)) return undefined;
      if (!this.options.schema) return entry;
      const checked = this.options.schema.safeParse(entry.v);
      return checked.success ? { v: checked.data } : undefined;
    } catch {
      return undefined;
    }
  }

  private async takeLeases(misses: Array<{ key: string; lease: string | null }>) {
    const pipeline = this.options.redis.pipeline();
    for (const miss of misses) {
      miss.lease = LEASE + randomBytes(8).toString('hex');
      pipeline.set(miss.key, miss.lease, 'PX', LEASE_TTL_MS, 'NX');
    }
    const replies = await pipeline.exec().catch(() => null);
    // NX failed: another reader holds the lease (or a value just arrived); we read the
    // database but leave the filling to the lease holder.
    misses.forEach((miss, i) => {
      if (replies?.[i]?.[1] !== 'OK') miss.lease = null;
    });
  }

  private async loadAll(misses: Array<{ id: string; key: string; lease: string | null }>) {
    try {
      const loaded: Array<T | null> = [];
      for (const { id } of misses) loaded.push(await this.options.load(id));
      return loaded;
    } catch (error) {
      const held = misses.filter((miss) => miss.lease);
      if (held.length) {
        const pipeline = this.options.redis.pipeline();
        for (const miss of held) pipeline.eval(RELEASE, 1, miss.key, miss.lease!);
        await pipeline.exec().catch(() => undefined);
      }
      throw error;
    }
  }

  private async fill(misses: Array<{ key: string; lease: string | null }>, loaded: Array<T | null>) {
    const pipeline = this.options.redis.pipeline();
    let filling = 0;
    misses.forEach((miss, i) => {
      if (!miss.lease) return;
      const value = loaded[i] ?? null;
      const ttl = this.ttlFor(value);
      if (ttl === null) pipeline.eval(RELEASE, 1, miss.key, miss.lease);
      else {
        const entry: Entry<T> = value === null ? { none: true } : { v: value };
        pipeline.eval(FILL, 1, miss.key, miss.lease, JSON.stringify(entry), ttl);
      }
      filling++;
    });
    if (filling > 0) await pipeline.exec().catch(() => undefined);
  }

  /**
   * Seconds to keep an entry, or null for "do not cache". Jittered so keys filled together do
   * not expire together; "not found" only when asked, and briefly, because a row created
   * later must not stay invisible for a whole TTL.
   */
  private ttlFor(value: T | null): number | null {
    const { ttlSeconds, jitterSeconds = 0, negativeTtlSeconds } = this.options;
    if (value === null) return negativeTtlSeconds ?? null;
    return ttlSeconds + Math.floor(Math.random() * (jitterSeconds + 1));
  }
}

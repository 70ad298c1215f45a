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

// Every Redis step touches one key, so the cache works on a Redis Cluster whatever the ids: the
// lease lives in the entry's own key, and the scripts declare that one key. A batch is one
// command per key, all sent before any reply is awaited: one round trip, like a pipeline, but
// each command goes to the node that owns its key. MGET or a pipeline would need every key in
// one slot (CROSSSLOT), and ioredis does not split them by node for you.

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
    const cached = await Promise.all(keys.map((key) => this.options.redis.get(key))).catch(() => null);
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
    const replies = await Promise.all(
      misses.map((miss) => {
        miss.lease = LEASE + randomBytes(8).toString('hex');
        return this.options.redis.set(miss.key, miss.lease, 'PX', LEASE_TTL_MS, 'NX').catch(() => null);
      }),
    );
    // NX failed: another reader holds the lease (or a value just arrived); we read the
    // database but leave the filling to the lease holder.
    misses.forEach((miss, i) => {
      if (replies[i] !== 'OK') miss.lease = null;
    });
  }

  private async loadAll(misses: Array<{ id: string; key: string; lease: string | null }>) {
    try {
      const loaded: Array<T | null> = [];
      for (const { id } of misses) loaded.push(await this.options.load(id));
      return loaded;
    } catch (error) {
      const held = misses.filter((miss) => miss.lease);
      await Promise.allSettled(held.map((miss) => this.options.redis.eval(RELEASE, 1, miss.key, miss.lease!)));
      throw error;
    }
  }

  private async fill(misses: Array<{ key: string; lease: string | null }>, loaded: Array<T | null>) {
    const { redis } = this.options;
    const fills = misses.map((miss, i) => {
      if (!miss.lease) return undefined;
      const value = loaded[i] ?? null;
      const ttl = this.ttlFor(value);
      if (ttl === null) return redis.eval(RELEASE, 1, miss.key, miss.lease);
      const entry: Entry<T> = value === null ? { none: true } : { v: value };
      return redis.eval(FILL, 1, miss.key, miss.lease, JSON.stringify(entry), ttl);
    });
    // A failed fill is a missed optimisation, not an error: the next reader fills again.
    await Promise.allSettled(fills);
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

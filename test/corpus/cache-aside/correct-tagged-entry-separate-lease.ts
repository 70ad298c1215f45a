/**
 * @correct A tag-byte envelope (`J<json>` for a row, `N` for "not found") instead of JSON wrappers, the lease in a key of its own beside the entry that a write deletes together with it (one multi-key DEL), and loads in `getMany` run in parallel.
 */
import { randomUUID } from 'node:crypto';
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

const ROW = 'J';
const NOT_FOUND = 'N';
const LEASE_TTL_MS = 10_000;

// Fill only while our lease is still there (a write deletes it with the entry), value and TTL
// in one SET; then drop the lease, which has done its job.
const FILL = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('DEL', KEYS[2])
return 1`;

// Give the lease back, but only if it is still ours.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type Decoded<T> = { hit: true; value: T | null } | { hit: false };
type Miss = { id: string; key: string; leaseKey: string; token: string | null };

export class CacheAside<T> {
  constructor(private readonly options: CacheAsideOptions<T>) {}

  async get(id: string): Promise<T | null> {
    const [value] = await this.getMany([id]);
    return value ?? null;
  }

  async getMany(ids: string[]): Promise<Array<T | null>> {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return [];
    const { redis } = this.options;
    const cached = await redis.mget(...unique.map((id) => this.key(id))).catch(() => null);
    const found = new Map<string, T | null>();
    const misses: Miss[] = [];
    unique.forEach((id, i) => {
      const decoded: Decoded<T> = cached ? this.decode(cached[i] ?? null) : { hit: false };
      if (decoded.hit) found.set(id, decoded.value);
      else misses.push({ id, key: this.key(id), leaseKey: this.leaseKey(id), token: null });
    });
    if (misses.length === 0) return ids.map((id) => found.get(id) ?? null);

    // With Redis down we only read the database.
    if (cached) await this.takeLeases(misses);
    let loaded: Array<T | null>;
    try {
      loaded = await Promise.all(misses.map(({ id }) => this.options.load(id)));
    } catch (error) {
      await this.releaseLeases(misses);
      throw error;
    }
    misses.forEach(({ id }, i) => found.set(id, loaded[i] ?? null));
    if (cached) await this.fill(misses, loaded);
    return ids.map((id) => found.get(id) ?? null);
  }

  async set(id: string, value: T): Promise<void> {
    // The database first; then drop the entry and any lease taken before this write, so a
    // reader that loaded the old row can no longer fill it.
    await this.options.save(id, value);
    await this.invalidate(id);
  }

  async invalidate(id: string): Promise<void> {
    await this.options.redis.del(this.key(id), this.leaseKey(id));
  }

  private key(id: string) {
    return `${this.options.keyPrefix}:${id}`;
  }

  // '#' after the prefix, where entries have ':': no id's entry can collide with a lease.
  private leaseKey(id: string) {
    return `${this.options.keyPrefix}#lease:${id}`;
  }

  private decode(raw: string | null): Decoded<T> {
    if (raw === null) return { hit: false };
    if (raw === NOT_FOUND) return { hit: true, value: null };
    if (!raw.startsWith(ROW)) return { hit: false };
    try {
      const value: unknown = JSON.parse(raw.slice(ROW.length));
      if (value === null || value === undefined) return { hit: false };
      if (!this.options.schema) return { hit: true, value: value as T };
      const checked = this.options.schema.safeParse(value);
      return checked.success ? { hit: true, value: checked.data } : { hit: false };
    } catch {
      return { hit: false };
    }
  }

  private encode(value: T | null): string {
    return value === null ? NOT_FOUND : ROW + JSON.stringify(value);
  }

  private async takeLeases(misses: Miss[]) {
    const pipeline = this.options.redis.pipeline();
    for (const miss of misses) {
      miss.token = randomUUID();
      pipeline.set(miss.leaseKey, miss.token, 'PX', LEASE_TTL_MS, 'NX');
    }
    const replies = await pipeline.exec().catch(() => null);
    // Someone else holds the lease: we still read the database, but leave the fill to them.
    misses.forEach((miss, i) => {
      if (replies?.[i]?.[1] !== 'OK') miss.token = null;
    });
  }

  private async releaseLeases(misses: Miss[]) {
    const held = misses.filter((miss) => miss.token);
    if (held.length === 0) return;
    const pipeline = this.options.redis.pipeline();
    for (const miss of held) pipeline.eval(RELEASE, 1, miss.leaseKey, miss.token!);
    await pipeline.exec().catch(() => undefined);
  }

  private async fill(misses: Miss[], loaded: Array<T | null>) {
    const pipeline = this.options.redis.pipeline();
    let queued = 0;
    misses.forEach((miss, i) => {
      if (!miss.token) return;
      const value = loaded[i] ?? null;
      const ttl = this.ttlFor(value);
      if (ttl === null) pipeline.eval(RELEASE, 1, miss.leaseKey, miss.token);
      else pipeline.eval(FILL, 2, miss.key, miss.leaseKey, miss.token, this.encode(value), ttl);
      queued++;
    });
    if (queued > 0) await pipeline.exec().catch(() => undefined);
  }

  private ttlFor(value: T | null): number | null {
    const { ttlSeconds, jitterSeconds = 0, negativeTtlSeconds } = this.options;
    if (value === null) return negativeTtlSeconds ?? null;
    return ttlSeconds + Math.floor(Math.random() * (jitterSeconds + 1));
  }
}

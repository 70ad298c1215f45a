import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import './ioredis-prefix.ts';
import { applyClusterRules, CLUSTER_RULES } from './cluster-rules.ts';
import { createMockRedis, releaseMockServer } from './mock-redis.ts';
import { RoundTripLog } from './round-trips.ts';

/** Set by the runner's --redis flag; unset means the mock. */
export const REDIS_URL = process.env.REDIS_URL || undefined;
/** Set by the runner's --cluster flag: a seed node of a Redis Cluster (it wins over REDIS_URL). */
export const REDIS_CLUSTER = process.env.REDIS_CLUSTER || undefined;
export const REDIS_MODE: 'mock' | 'real' = REDIS_URL || REDIS_CLUSTER ? 'real' : 'mock';

// Every key of this run lives under lab:<run>:<test>: so a shared server is never disturbed.
// The runner names the run (LAB_RUN_ID) so that it can remove the run's keys itself after a
// suite it had to kill, whose own clean-up never ran.
const RUN_ID = process.env.LAB_RUN_ID || randomBytes(3).toString('hex');
let nextTest = 0;
let nextMockPort = 40_000;

/** The Redis a graded test works with. */
export interface LabRedis {
  mode: 'mock' | 'real';
  /** The clients are ioredis `Cluster` clients of a real Redis Cluster (typed as Redis: same commands). */
  cluster: boolean;
  /**
   * Keys of one command, script or MULTI must share a hash slot: on a cluster, and on the mock
   * under --cluster-rules. A suite whose README asks callers to tag keys passes tagged keys then.
   */
  slots: boolean;
  /** The client to hand to the code under test. Its round trips are recorded. */
  redis: Redis;
  /** A client for the test's own reads and writes: same keys, not recorded. */
  raw: Redis;
  /** Another client over the same data, as a second process (or a restarted one) would have. */
  connect(): Redis;
  /** Round trips of `redis` and of every client from `connect()`. */
  roundTrips: RoundTripLog;
  /** Keys the test's keyspace holds now, without the run prefix. */
  keys(): Promise<string[]>;
  /** Remaining time to live in ms: -1 no expiry, -2 no such key (as PTTL). */
  ttlMs(key: string): Promise<number>;
  /**
   * Every key with its TTL and the strings it holds, whatever its type: a string's value, list
   * items, set and sorted set members, hash fields and values, stream fields and values. For
   * asserting what a design left behind without knowing its layout.
   */
  dump(): Promise<KeyDump[]>;
  /** The real-server key prefix ('' with the mock); the clock uses it to age keys. */
  prefix: string;
  close(): Promise<void>;
}

export interface KeyDump {
  key: string;
  type: string;
  items: string[];
  ttlMs: number;
}

/** The strings `key` holds, whatever its type. */
async function itemsOf(raw: Redis, key: string, type: string): Promise<string[]> {
  switch (type) {
    case 'string':
      return [(await raw.get(key)) ?? ''];
    case 'list':
      return raw.lrange(key, 0, -1);
    case 'set':
      return raw.smembers(key);
    case 'zset':
      return raw.zrange(key, 0, -1);
    case 'hash':
      return Object.entries(await raw.hgetall(key)).flat();
    case 'stream':
      return (await raw.xrange(key, '-', '+')).flatMap(([, fields]) => fields);
    default:
      return [];
  }
}

const open = new Set<LabRedis>();

/**
 * A fresh, isolated Redis for one test: its own mock server, or on a real server its own key
 * prefix, deleted by `close()`. Never FLUSHDB/FLUSHALL: a learner's server may hold real data.
 *
 * On a cluster the prefix holds no hash tag, so the learner's keys spread over the slots (and a
 * script over two of them fails with CROSSSLOT, as it would in production) and the learner's own
 * `{tag}` decides a key's slot. A lab that stands for one node of a sharded design (`database`)
 * is one slot instead: a hash tag in its prefix keeps its keys together, as one server would.
 */
export async function createLabRedis(
  options: { url?: string | null; cluster?: string | null; database?: number; clusterRules?: boolean } = {},
): Promise<LabRedis> {
  // The kit's own self-tests run on several; a suite always takes the run's mode.
  const clusterUrl =
    options.cluster !== undefined
      ? (options.cluster ?? undefined)
      : options.url === undefined
        ? REDIS_CLUSTER
        : undefined;
  const url = clusterUrl ? undefined : options.url === undefined ? REDIS_URL : (options.url ?? undefined);
  const test = ++nextTest;
  // On the mock under --cluster-rules, refuse what a cluster refuses; on a cluster, explain it.
  const rules = clusterUrl ? 'explain' : !url && (options.clusterRules ?? CLUSTER_RULES) ? 'enforce' : null;
  const prefix = rules && options.database !== undefined ? `lab:${RUN_ID}:{${test}}:` : `lab:${RUN_ID}:${test}:`;
  const roundTrips = new RoundTripLog();
  const clients: Redis[] = [];
  let make: () => Redis;
  let admin: Redis | undefined;
  let cluster: Cluster | undefined;

  if (clusterUrl) {
    cluster = new Cluster([clusterUrl], {
      lazyConnect: true,
      clusterRetryStrategy: () => null,
      redisOptions: { maxRetriesPerRequest: 1 },
    });
    try {
      await cluster.connect();
    } catch (error) {
      cluster.disconnect();
      throw new Error(
        `Cannot reach a Redis Cluster at ${clusterUrl} (${(error as Error).message}). ` +
          'Leave out the address (--cluster alone starts a local one), or grade on one server with --redis.',
      );
    }
    admin = cluster as unknown as Redis;
    make = () =>
      new Cluster([clusterUrl], { keyPrefix: prefix, redisOptions: { maxRetriesPerRequest: 1 } }) as unknown as Redis;
  } else if (url) {
    // `database`: on a real server, a lab in another logical database (a second node, say).
    const db = options.database ?? 0;
    admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, ...(db && { db }) });
    try {
      await admin.connect();
    } catch (error) {
      admin.disconnect();
      throw new Error(
        `Cannot reach the Redis server at ${url} (${(error as Error).message}). ` +
          'Start one (redis-server) or grade against the mock by leaving out --redis.',
      );
    }
    make = () => new Redis(url, { keyPrefix: prefix, maxRetriesPerRequest: 1, ...(db && { db }) });
  } else {
    const port = nextMockPort++;
    make = () => createMockRedis(port, prefix);
  }

  const client = (record: boolean): Redis => {
    const created = make();
    if (rules) applyClusterRules(created, { prefix, enforce: rules === 'enforce' });
    clients.push(created);
    // A duplicate is another connection of the same test: recorded, faulted and closed alike.
    (created as any).duplicate = () => client(record);
    return record ? roundTrips.watch(created) : created;
  };
  const redis = client(true);
  if (admin) await redis.ping();
  roundTrips.reset();
  // Made on first use: many tests never read Redis behind the code's back, and a mock client
  // costs a millisecond to build.
  let raw: Redis | undefined;

  /** Every key under the prefix: on a cluster, from every primary (SCAN sees one node's keys). */
  const scan = async () => {
    if (!cluster) return scanPrefix(admin!, prefix);
    const found = await Promise.all(cluster.nodes('master').map((node) => scanPrefix(node, prefix)));
    return found.flat();
  };

  const lab: LabRedis = {
    mode: url || clusterUrl ? 'real' : 'mock',
    cluster: Boolean(cluster),
    slots: rules !== null,
    redis,
    get raw() {
      return (raw ??= client(false));
    },
    prefix: url || clusterUrl ? prefix : '',
    roundTrips,
    connect: () => client(true),
    async keys() {
      if (!admin) {
        const full: string[] = (redis as any).data.keys();
        return full.map((key) => key.slice(prefix.length)).sort();
      }
      return (await scan()).map((key) => key.slice(prefix.length)).sort();
    },
    ttlMs: (key) => lab.raw.pttl(key),
    async dump() {
      const out: KeyDump[] = [];
      for (const key of await lab.keys()) {
        const type = await lab.raw.type(key);
        out.push({ key, type, items: await itemsOf(lab.raw, key, type), ttlMs: await lab.ttlMs(key) });
      }
      return out;
    },
    async close() {
      open.delete(lab);
      if (admin) {
        const keys = await scan();
        // A cluster takes one slot per multi-key command: unlink key by key there.
        if (cluster) await Promise.all(keys.map((key) => admin!.unlink(key)));
        else for (let i = 0; i < keys.length; i += 500) await admin.unlink(...keys.slice(i, i + 500));
        admin.disconnect();
      }
      for (const c of clients) c.disconnect();
      if (!admin) releaseMockServer(redis);
    },
  };
  open.add(lab);
  return lab;
}

/** Every key under `prefix`, by SCAN (never KEYS, which blocks a busy server). */
export async function scanPrefix(admin: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

/** Closes every LabRedis a test left open; the setup file calls it after each test. */
export async function closeAllLabs() {
  await Promise.all([...open].map((lab) => lab.close()));
}

import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export interface ShardedCacheOptions {
  /** One ioredis client per cache node, by node name. The order of the entries does not matter. */
  nodes: Record<string, Redis>;
  /** Points each node gets on the ring. Default 160. */
  virtualNodes?: number;
}

export interface SetOptions {
  /** How long the value lives, in seconds. */
  ttlSeconds: number;
}

/** A command sent to one node failed. Given: use it as it is. */
export class ShardNodeError extends Error {
  override name = 'ShardNodeError';
  constructor(
    readonly node: string,
    readonly command: string,
    cause: unknown,
  ) {
    super(`Cache node "${node}" failed on ${command}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

export const DEFAULT_VIRTUAL_NODES = 160;

// The first 4 bytes of MD5, as an unsigned 32-bit point. MD5 is no security measure here; it is
// well mixed (a one-character change moves the point anywhere on the ring), deterministic across
// processes, machines and Node versions, and built in. A weak hash such as a sum of character
// codes puts "a#0", "a#1", … next to each other, so a node's 160 points behave like one.
const hash32 = (text: string) => createHash('md5').update(text).digest().readUInt32BE(0);

export class ShardedCache {
  private readonly clients = new Map<string, Redis>();
  private readonly virtualNodes: number;
  // The ring, sorted by point: points[i] belongs to owners[i].
  private points: number[] = [];
  private owners: string[] = [];
  private readonly hot = new Map<string, number>();

  constructor(options: ShardedCacheOptions) {
    this.virtualNodes = options.virtualNodes ?? DEFAULT_VIRTUAL_NODES;
    for (const [name, redis] of Object.entries(options.nodes)) this.clients.set(name, redis);
    this.rebuild();
  }

  /** The node that owns `key`: the first point clockwise from hash(key). Pure and synchronous. */
  nodeFor(key: string): string {
    return this.owners[this.firstPointFrom(hash32(key))]!;
  }

  addNode(name: string, redis: Redis): void {
    if (this.clients.has(name)) throw new Error(`Cache node "${name}" is already in the ring`);
    this.clients.set(name, redis);
    this.rebuild();
  }

  removeNode(name: string): void {
    if (!this.clients.delete(name)) throw new Error(`Cache node "${name}" is not in the ring`);
    this.rebuild();
  }

  /** Staff: store `key` on `replicas` distinct nodes and spread its reads over them. */
  markHot(key: string, replicas: number): void {
    this.hot.set(key, Math.max(1, Math.floor(replicas)));
  }

  async get(key: string): Promise<string | null> {
    // A hot key's replicas in a random order: the first that answers serves the read, so load
    // spreads over all of them and a replica that is down is skipped.
    for (const node of shuffled(this.nodesFor(key))) {
      try {
        return await this.client(node).get(key);
      } catch {
        // A cache node that is down is a miss, not an outage: the caller falls back to the
        // database for this key. Try the next replica, if the key has one.
      }
    }
    return null;
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    const results: (string | null)[] = keys.map(() => null);
    // Group the positions by the node that serves them: one MGET per node, however many keys.
    const batches = new Map<string, number[]>();
    for (const [position, key] of keys.entries()) {
      const nodes = this.nodesFor(key);
      const node = nodes[Math.floor(Math.random() * nodes.length)]!;
      batches.set(node, [...(batches.get(node) ?? []), position]);
    }
    const retry: number[] = [];
    // Every node at once, and each with its own catch: with a bare Promise.all, one node that
    // is down would fail the whole batch, including the keys the healthy nodes hold.
    await Promise.all(
      [...batches].map(async ([node, positions]) => {
        try {
          const values = await this.client(node).mget(...positions.map((position) => keys[position]!));
          for (const [i, position] of positions.entries()) results[position] = values[i] ?? null;
        } catch {
          retry.push(...positions.filter((position) => this.hot.has(keys[position]!)));
        }
      }),
    );
    // A hot key whose chosen replica was down gets a second chance on its other replicas; the
    // other keys of a down node stay misses.
    await Promise.all(retry.map(async (position) => (results[position] = await this.get(keys[position]!))));
    return results;
  }

  async set(key: string, value: string, options: SetOptions): Promise<void> {
    // Value and TTL in one command (EX is seconds), on every node that may serve the key: a
    // replica left out would keep serving the previous value.
    await this.onEveryReplica(key, 'SET', (redis) => redis.set(key, value, 'EX', options.ttlSeconds));
  }

  async delete(key: string): Promise<void> {
    await this.onEveryReplica(key, 'DEL', (redis) => redis.del(key));
  }

  private async onEveryReplica(key: string, command: string, run: (redis: Redis) => Promise<unknown>) {
    const nodes = this.nodesFor(key);
    const outcomes = await Promise.allSettled(nodes.map((node) => run(this.client(node))));
    const failed = outcomes.findIndex((outcome) => outcome.status === 'rejected');
    // A write must not pass for done: name the node, so the caller can retry or alert.
    if (failed >= 0) throw new ShardNodeError(nodes[failed]!, command, (outcomes[failed] as PromiseRejectedResult).reason);
  }

  /** The owner, and for a hot key the next distinct nodes clockwise: the nodes that would own it next. */
  private nodesFor(key: string): string[] {
    const wanted = Math.min(this.hot.get(key) ?? 1, this.clients.size);
    const nodes: string[] = [];
    const start = this.firstPointFrom(hash32(key));
    for (let i = 0; nodes.length < wanted; i++) {
      const node = this.owners[(start + i) % this.owners.length]!;
      // Consecutive points often belong to the same node: skip them, or two "replicas" are one.
      if (!nodes.includes(node)) nodes.push(node);
    }
    return nodes;
  }

  private client(node: string): Redis {
    return this.clients.get(node)!;
  }

  /** Index of the first point at or after `point`, wrapping past the top of the ring to 0. */
  private firstPointFrom(point: number): number {
    if (this.points.length === 0) throw new Error('ShardedCache has no nodes');
    let low = 0;
    let high = this.points.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.points[middle]! < point) low = middle + 1;
      else high = middle;
    }
    return low % this.points.length;
  }

  // Rebuilt from the set of names alone: a point depends only on `${name}#${i}`, and ties (two
  // points equal, about one in 27 million pairs) are broken by name, so the ring is the same
  // whatever order the nodes were given or added in, and in every process.
  private rebuild() {
    const entries: Array<{ point: number; node: string }> = [];
    for (const node of this.clients.keys()) {
      for (let i = 0; i < this.virtualNodes; i++) entries.push({ point: hash32(`${node}#${i}`), node });
    }
    entries.sort((a, b) => a.point - b.point || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    this.points = entries.map((entry) => entry.point);
    this.owners = entries.map((entry) => entry.node);
  }
}

function shuffled<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

import type { Redis } from 'ioredis';

export interface ShardedCacheOptions {
  /** One ioredis client per cache node, by node name (mock or real). The order of the entries must not matter. */
  nodes: Record<string, Redis>;
  /** Points each node gets on the ring. Default 160. */
  virtualNodes?: number;
}

export interface SetOptions {
  /** How long the value lives, in seconds. */
  ttlSeconds: number;
}

/** A command sent to one node failed. Given: use it as it is (or any error whose message names the node). */
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

export class ShardedCache {
  constructor(private readonly options: ShardedCacheOptions) {}

  /** The name of the node that owns `key` on the consistent-hash ring. Pure and synchronous. */
  nodeFor(key: string): string {
    throw new Error('TODO: implement ShardedCache.nodeFor (see README.md)');
  }

  /** The value of `key` from its node, or null on a miss or when its node is down. */
  async get(key: string): Promise<string | null> {
    throw new Error('TODO: implement ShardedCache.get (see README.md)');
  }

  /** The values of `keys`, in input order, with one round trip per node involved. */
  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    throw new Error('TODO: implement ShardedCache.getMany (see README.md)');
  }

  /** Stores `value` under `key` on its node, expiring after `options.ttlSeconds`. */
  async set(key: string, value: string, options: SetOptions): Promise<void> {
    throw new Error('TODO: implement ShardedCache.set (see README.md)');
  }

  /** Removes `key` from its node (and, for a hot key, from every replica). */
  async delete(key: string): Promise<void> {
    throw new Error('TODO: implement ShardedCache.delete (see README.md)');
  }

  /** Adds a node to the ring. */
  addNode(name: string, redis: Redis): void {
    throw new Error('TODO: implement ShardedCache.addNode (see README.md)');
  }

  /** Removes a node from the ring: no command goes to it afterwards. */
  removeNode(name: string): void {
    throw new Error('TODO: implement ShardedCache.removeNode (see README.md)');
  }

  /** Staff: store `key` on `replicas` distinct nodes and spread its reads over them. */
  markHot(key: string, replicas: number): void {
    throw new Error('TODO: implement ShardedCache.markHot (see README.md)');
  }
}

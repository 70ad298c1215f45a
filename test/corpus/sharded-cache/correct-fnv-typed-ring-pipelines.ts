/**
 * @correct FNV-1a with MurmurHash3's fmix32 finalizer instead of MD5, the ring in two typed arrays
 * built from the sorted node names, getMany with one pipeline of GETs per node sent one node after
 * another, SET and EXPIRE in one MULTI, and hot-key reads that start at a random replica and walk on.
 */
import type { Redis } from 'ioredis';

export interface ShardedCacheOptions {
  nodes: Record<string, Redis>;
  virtualNodes?: number;
}

export interface SetOptions {
  ttlSeconds: number;
}

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

function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // fmix32: FNV alone leaves "node#1", "node#2" close together in the high bits.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class ShardedCache {
  private readonly clients = new Map<string, Redis>();
  private readonly virtualNodes: number;
  private names: string[] = [];
  private points = new Uint32Array(0);
  private owners = new Uint16Array(0);
  private readonly replicas = new Map<string, number>();

  constructor(options: ShardedCacheOptions) {
    this.virtualNodes = options.virtualNodes ?? 160;
    for (const name of Object.keys(options.nodes).sort()) this.clients.set(name, options.nodes[name]!);
    this.build();
  }

  nodeFor(key: string): string {
    return this.names[this.owners[this.indexFor(key)]!]!;
  }

  addNode(name: string, redis: Redis): void {
    this.clients.set(name, redis);
    this.build();
  }

  removeNode(name: string): void {
    this.clients.delete(name);
    this.build();
  }

  markHot(key: string, replicas: number): void {
    this.replicas.set(key, replicas);
  }

  async get(key: string): Promise<string | null> {
    const nodes = this.replicaNodes(key);
    const first = Math.floor(Math.random() * nodes.length);
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[(first + i) % nodes.length]!;
      try {
        return await this.clients.get(node)!.get(key);
      } catch {
        // next replica, or a miss
      }
    }
    return null;
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    const out = new Array<string | null>(keys.length).fill(null);
    const byNode = new Map<string, number[]>();
    keys.forEach((key, i) => {
      const nodes = this.replicaNodes(key);
      const node = nodes[Math.floor(Math.random() * nodes.length)]!;
      if (!byNode.has(node)) byNode.set(node, []);
      byNode.get(node)!.push(i);
    });
    for (const [node, positions] of byNode) {
      const pipeline = this.clients.get(node)!.pipeline();
      for (const i of positions) pipeline.get(keys[i]!);
      const replies = await pipeline.exec().catch(() => null);
      positions.forEach((i, j) => {
        const [error, value] = replies?.[j] ?? [new Error('down'), null];
        out[i] = error ? null : ((value as string | null) ?? null);
      });
    }
    return out;
  }

  async set(key: string, value: string, options: SetOptions): Promise<void> {
    for (const node of this.replicaNodes(key)) {
      try {
        await this.clients.get(node)!.multi().set(key, value).expire(key, options.ttlSeconds).exec();
      } catch (error) {
        throw new ShardNodeError(node, 'SET', error);
      }
    }
  }

  async delete(key: string): Promise<void> {
    for (const node of this.replicaNodes(key)) {
      try {
        await this.clients.get(node)!.del(key);
      } catch (error) {
        throw new ShardNodeError(node, 'DEL', error);
      }
    }
  }

  private replicaNodes(key: string): string[] {
    const wanted = Math.min(this.replicas.get(key) ?? 1, this.names.length);
    const seen = new Set<number>();
    for (let i = this.indexFor(key); seen.size < wanted; i = (i + 1) % this.points.length) seen.add(this.owners[i]!);
    return [...seen].map((owner) => this.names[owner]!);
  }

  private indexFor(key: string): number {
    const p = fnv1a32(key);
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]! < p) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.points.length ? 0 : lo;
  }

  private build() {
    this.names = [...this.clients.keys()].sort();
    const all: Array<[number, number]> = [];
    this.names.forEach((name, owner) => {
      for (let i = 0; i < this.virtualNodes; i++) all.push([fnv1a32(`${name}#${i}`), owner]);
    });
    // Owners are indexes into the sorted names, so equal points tie-break the same way everywhere.
    all.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.points = Uint32Array.from(all, ([point]) => point);
    this.owners = Uint16Array.from(all, ([, owner]) => owner);
  }
}

import type { Redis } from 'ioredis';

/** One stream entry as the handler gets it. */
export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

/** Staff: what an idempotent handler returns instead of writing to Redis itself. */
export interface Effect {
  key: string;
  value: string;
}

export interface StreamWorkerOptions {
  /** ioredis client, mock or real. */
  redis: Redis;
  /** The stream key. */
  stream: string;
  /** The consumer group; created at the start of the stream if missing. */
  group: string;
  /** This worker's consumer name inside the group. */
  consumer: string;
  /**
   * Processes one entry. Resolving means done (the entry is acked); throwing leaves it pending.
   * With `idempotent: true` it returns the Effect (or Effects) to write instead of writing them.
   */
  handler: (entry: StreamEntry) => Promise<unknown>;
  /** Deliveries an entry may have; the one after that sends it to the dead-letter stream. */
  maxDeliveries: number;
  /** An entry pending for this long (ms) is presumed lost by its consumer and may be claimed. */
  claimIdleMs: number;
  /** Where entries that ran out of deliveries are copied. */
  deadLetterStream: string;
  /** New entries read per runOnce (and at most this many claimed). Default 10. */
  batchSize?: number;
  /** Staff: write the handler's effects, an idempotency record and the ack in one atomic step. */
  idempotent?: boolean;
  /**
   * Staff: read the stream only while holding its lease (one active consumer per partition, for
   * per-key order). The lease expires leaseMs after the last runOnce that renewed it.
   */
  exclusive?: { leaseMs: number };
}

/** Staff: one entry for a partitioned stream (see publish). */
export interface PublishOptions {
  /** The base name: partition p is the stream `${stream}:${p}`. */
  stream: string;
  partitions: number;
  /** The ordering key (an order id, a user id): all its entries go to one partition. */
  key: string;
  fields: Record<string, string>;
}

export interface RunResult {
  /** Entries whose handler resolved and that were acked in this call. */
  processed: number;
  /** Claimed entries (idle too long at another or this consumer) handed to the handler again. */
  retried: number;
  /** Entries copied to the dead-letter stream and acked in this call. */
  deadLettered: number;
}

/**
 * Staff: the partition (0 … partitions - 1) of `key`: a stable, well-spread hash, the same in
 * every process.
 */
export function partitionOf(key: string, partitions: number): number {
  throw new Error('TODO: implement partitionOf (see README.md)');
}

/** Staff: appends an entry to `${stream}:${partitionOf(key, partitions)}`, with `key` in its fields. */
export async function publish(redis: Redis, options: PublishOptions): Promise<string> {
  throw new Error('TODO: implement publish (see README.md)');
}

export class StreamWorker {
  constructor(private readonly options: StreamWorkerOptions) {}

  /**
   * One pass: create the group if missing, claim entries idle for claimIdleMs or more (and
   * dead-letter those out of deliveries), read up to batchSize new entries, run the handler for
   * each, and ack only what the handler finished. Returns the counts for this call.
   */
  async runOnce(): Promise<RunResult> {
    throw new Error('TODO: implement StreamWorker.runOnce (see README.md)');
  }

  /** Removes the entries every group of the stream has acked; returns how many were removed. */
  async trim(): Promise<number> {
    throw new Error('TODO: implement StreamWorker.trim (see README.md)');
  }

  /** Staff: gives up the partition's lease, only if this worker still holds it. */
  async release(): Promise<void> {
    throw new Error('TODO: implement StreamWorker.release (see README.md)');
  }
}

import type { Redis } from 'ioredis';
import type { ZodType } from 'zod';

export type Priority = 'critical' | 'high' | 'normal' | 'low';

export interface Job<P> {
  id: string;
  payload: P;
  priority: Priority;
  /** Which delivery this is: 1 the first time the job is reserved, 2 the next time, … */
  attempt: number;
}

export interface PriorityQueueOptions<P> {
  redis: Redis;
  /** Every key of the queue starts with `${name}:`. */
  name: string;
  /** Deliveries before the job is dead-lettered (a lease that runs out counts as a delivery). */
  maxAttempts: number;
  /** A reserved job not acked, failed or extended within this time is delivered again. */
  visibilityTimeoutMs: number;
  /** Wait before the next attempt, given the number of the delivery that failed (1, 2, …). */
  backoffMs?: (attempt: number) => number;
  /** enqueue() rejects payloads that do not match. */
  schema?: ZodType<P>;
  /** Staff: a job that has waited this long goes ahead of newer work of higher priority. */
  maxWaitMs?: number;
}

// TODO: implement PriorityQueue (see README.md). Keep every piece of state in Redis.
export class PriorityQueue<P> {
  constructor(private readonly options: PriorityQueueOptions<P>) {}

  /** Queues a job and resolves with its id. A known id is not queued twice. */
  async enqueue(payload: P, options?: { priority?: Priority; id?: string }): Promise<string> {
    throw new Error('TODO: implement PriorityQueue.enqueue (see README.md)');
  }

  /** The next job (highest priority first, FIFO within a priority), leased; null when none is ready. */
  async reserve(): Promise<Job<P> | null> {
    throw new Error('TODO: implement PriorityQueue.reserve (see README.md)');
  }

  /** Finishes the job. False when this delivery no longer holds the lease. */
  async ack(job: Job<P>): Promise<boolean> {
    throw new Error('TODO: implement PriorityQueue.ack (see README.md)');
  }

  /** Schedules a retry after backoffMs(job.attempt), or dead-letters the job on its last attempt. */
  async fail(job: Job<P>, reason: string): Promise<'retry' | 'dead'> {
    throw new Error('TODO: implement PriorityQueue.fail (see README.md)');
  }

  /** Staff: heartbeat. This delivery's lease now ends `ms` from now. False when it was lost. */
  async extend(job: Job<P>, ms?: number): Promise<boolean> {
    throw new Error('TODO: implement PriorityQueue.extend (see README.md)');
  }

  /** Expired leases and due retries back to ready; resolves with how many it moved. */
  async recover(): Promise<number> {
    throw new Error('TODO: implement PriorityQueue.recover (see README.md)');
  }

  /** Every dead job, as of its last delivery, with the reason it died. */
  async deadLetters(): Promise<Array<{ job: Job<P>; reason: string }>> {
    throw new Error('TODO: implement PriorityQueue.deadLetters (see README.md)');
  }

  /** A dead job back to ready with a fresh set of attempts. False when `id` is not dead. */
  async redrive(id: string): Promise<boolean> {
    throw new Error('TODO: implement PriorityQueue.redrive (see README.md)');
  }

  async counts(): Promise<{ ready: number; inflight: number; delayed: number; dead: number }> {
    throw new Error('TODO: implement PriorityQueue.counts (see README.md)');
  }
}

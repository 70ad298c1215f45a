import type { Redis } from 'ioredis';
import { list as COMMANDS } from '@ioredis/commands';

const CONNECTION_SETUP = new Set(['info', 'client', 'select', 'hello', 'auth']);

/** One trip to the server: a single command, or a whole pipeline / MULTI…EXEC sent at once. */
export interface RoundTrip {
  kind: 'command' | 'pipeline' | 'transaction';
  /** The command name, or for a batch the number of commands it carried. */
  command: string;
  size: number;
}

/**
 * Counts round trips made through the clients it watches. A pipeline or a transaction counts
 * once however many commands it carries; a command sent alone counts once, even when several
 * are in flight together, because each still costs the server a request and the client a reply.
 */
export class RoundTripLog {
  readonly trips: RoundTrip[] = [];
  private breakAt: number | null = null;

  /**
   * Fault injection: after `n` more round trips every command of the watched clients rejects,
   * as when Redis goes down or the process loses its connection mid-operation. `n = 0` means
   * Redis is down from now on.
   */
  breakAfter(n: number) {
    this.breakAt = this.trips.length + n;
  }

  /** Ends a breakAfter(): commands reach Redis again. */
  repair() {
    this.breakAt = null;
  }

  /** Records a trip, or rejects it when the connection is broken. */
  private send<T>(trip: RoundTrip, run: () => T): T | Promise<never> {
    if (this.breakAt !== null && this.trips.length >= this.breakAt) {
      return Promise.reject(new Error(`Connection lost (injected by the test) before ${trip.command.toUpperCase()}`));
    }
    this.trips.push(trip);
    return run();
  }

  get count() {
    return this.trips.length;
  }

  reset() {
    this.trips.length = 0;
  }

  /** "GET ×20, MGET ×1" — for failure messages. */
  summary(): string {
    const counts = new Map<string, number>();
    for (const trip of this.trips) {
      const label = trip.kind === 'command' ? trip.command.toUpperCase() : `${trip.kind} of ${trip.size}`;
      counts.set(label, (counts.get(label) ?? 0) + 1);
    }
    return [...counts].map(([label, n]) => `${label} ×${n}`).join(', ') || 'none';
  }

  /** Runs `action` and returns the round trips it made (the log keeps them too). */
  async during<T>(action: () => Promise<T>): Promise<{ result: T; trips: RoundTrip[] }> {
    const start = this.trips.length;
    const result = await action();
    return { result, trips: this.trips.slice(start) };
  }

  /** Patches `client` in place so its commands are recorded here. Returns the same client. */
  watch(client: Redis): Redis {
    const target = client as any;
    for (const name of [...COMMANDS, 'call']) {
      if (name === 'multi' || name === 'exec' || name === 'pipeline' || typeof target[name] !== 'function') continue;
      const original = target[name];
      target[name] = (...args: unknown[]) =>
        // While connecting, ioredis sends its own INFO ready check and CLIENT SETINFO: not trips
        // of the code under test.
        CONNECTION_SETUP.has(name) && target.status !== 'ready'
          ? original.apply(client, args)
          : this.send({ kind: 'command', command: name === 'call' ? String(args[0]).toLowerCase() : name, size: 1 }, () =>
          original.apply(client, args),
        );
    }
    for (const name of ['pipeline', 'multi'] as const) {
      const original = target[name];
      target[name] = (...args: unknown[]) => {
        const batch = original.apply(client, args);
        if (batch && typeof batch.exec === 'function' && !batch.__labRecorded) {
          batch.__labRecorded = true;
          const exec = batch.exec;
          batch.exec = (...execArgs: unknown[]) => {
            // ioredis queues MULTI itself as the first command of a transaction; the mock does not.
            const queued = typeof batch.length === 'number' ? batch.length : (batch._queue?.length ?? 0);
            const size = batch._queue?.[0]?.name === 'multi' ? queued - 1 : queued;
            return this.send({ kind: name === 'multi' ? 'transaction' : 'pipeline', command: name, size }, () =>
              exec.apply(batch, execArgs),
            );
          };
        }
        return batch;
      };
    }
    const defineCommand = target.defineCommand;
    target.defineCommand = (name: string, definition: unknown) => {
      defineCommand.call(client, name, definition);
      const command = target[name];
      target[name] = (...args: unknown[]) => this.send({ kind: 'command', command: name, size: 1 }, () => command.apply(client, args));
    };
    return client;
  }
}

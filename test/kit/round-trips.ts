import { AsyncLocalStorage } from 'node:async_hooks';
import type { Redis } from 'ioredis';
import { list as COMMANDS } from '@ioredis/commands';

const CONNECTION_SETUP = new Set(['info', 'client', 'select', 'hello', 'auth', 'cluster']);

/** One request as the client sent it: a command, or a whole pipeline / MULTI…EXEC. */
export interface Send {
  kind: 'command' | 'pipeline' | 'transaction';
  /** The command name (lower case), or 'pipeline' / 'multi'. */
  command: string;
  /** Commands carried: 1 for a command, the batch length for a pipeline or transaction. */
  size: number;
}

/**
 * One latency-bound round trip of one connection: everything the client sent before it waited
 * for any reply. A command alone is a trip; so is a pipeline or a transaction; and so are eight
 * commands sent together with Promise.all, because they leave in the same write and their
 * replies come back together, exactly like a pipeline (ioredis' enableAutoPipelining makes it
 * literal). A command sent after a reply of the trip arrived starts the next trip.
 */
export interface RoundTrip {
  sends: Send[];
}

/** What an operation cost: latency-bound trips, and the reply items Redis had to send. */
export interface Cost<T> {
  result: T;
  trips: RoundTrip[];
  /** Reply items read: an element of an array reply, a bulk or integer reply; nil counts 0. */
  elementsRead: number;
}

/** Reply items in a reply: what a design that reads a whole history per page pays for. */
export function countElements(reply: unknown): number {
  if (reply === null || reply === undefined) return 0;
  if (Array.isArray(reply)) return reply.reduce((sum: number, item) => sum + countElements(item), 0);
  return 1;
}

interface OpenTrip {
  trip: RoundTrip;
  /** Its place in the log, to swap in the shared copy once the trip is closed. */
  index: number;
  /** Set once a reply of this trip reached the code under test: later sends start a new trip. */
  answered: boolean;
  /** Resolves when the trip may leave, after an interleaved action (see beforeTrip). */
  gate: Promise<void> | null;
}

/**
 * Counts the round trips made through the clients it watches (see RoundTrip), the reply items
 * they read, and lets a test inject faults or another client's actions at a given trip.
 */
export class RoundTripLog {
  readonly trips: RoundTrip[] = [];
  private breakAt: number | null = null;
  private open = new WeakMap<object, OpenTrip>();
  private hooks = new Map<number, () => Promise<unknown>>();
  /** Marks the async context of an interleaved action: its own commands are not counted. */
  private interleaving = new AsyncLocalStorage<true>();
  elementsRead = 0;
  /** Commands refused by a breakAfter(): whether the cut connection was felt at all. */
  refused = 0;
  /** What the first refused send was: a pipeline can also be cut inside (breakAfter's `inside`). */
  lastRefused: Send | null = null;
  private cutInside = 0;
  /**
   * Closed trips and their sends are shared by shape: a learner's busy loop makes hundreds of
   * thousands of identical trips, and a log that kept each as its own objects grew by ~55 MB per
   * 200,000, which ran the test thread out of memory before the runner could name the loop.
   */
  private shapes = new Map<string, RoundTrip>();
  private sendShapes = new Map<string, Send>();

  /**
   * Fault injection: after `n` more round trips every command of the watched clients rejects,
   * as when Redis goes down or the process loses its connection mid-operation. `n = 0` means
   * Redis is down from now on. Commands that join a trip already sent still go through.
   */
  breakAfter(n: number, { inside = 0 }: { inside?: number } = {}) {
    this.breakAt = this.trips.length + n;
    this.cutInside = inside;
    this.lastRefused = null;
  }

  /** Ends a breakAfter(): commands reach Redis again. */
  repair() {
    this.breakAt = null;
  }

  /**
   * Interleaving: runs `action` (another client's write, a second worker's call) right before
   * the `n`-th round trip from now leaves (n = 0: before the next one). The trip waits for the
   * action to finish, as if the other client had won the race to Redis by a hair. Commands the
   * action itself sends are not counted.
   */
  beforeTrip(n: number, action: () => Promise<unknown>) {
    this.hooks.set(this.trips.length + n, action);
  }

  /** Drops interleavings that did not fire (the operation made fewer trips). */
  clearInterleavings() {
    this.hooks.clear();
  }

  /** Whether an interleaving set with beforeTrip() is still waiting for its trip. */
  get pendingInterleavings() {
    return this.hooks.size;
  }

  /** Records a send on `client`'s current trip (or a new one), or rejects when broken. */
  /**
   * `partly(m)` sends only the first m commands of a plain pipeline: the connection dropped while
   * the rest were on their way. A transaction is all or nothing, so it has no `partly`.
   */
  private send<T>(
    client: object,
    send: Send,
    run: () => Promise<T>,
    partly?: (m: number) => Promise<unknown>,
  ): Promise<T> {
    if (this.interleaving.getStore()) return run();
    send = this.shared(send);
    let current = this.open.get(client);
    if (current?.answered && this.trips[current.index] === current.trip)
      this.trips[current.index] = this.closed(current.trip);
    if (!current || current.answered) {
      const index = this.trips.length;
      if (this.breakAt !== null && index >= this.breakAt) {
        this.refused++;
        this.lastRefused ??= send;
        const lost = new Error(
          `Connection lost (injected by the test) during a ${send.kind} of ${send.size}, after ${this.cutInside} of its commands`,
        );
        if (index === this.breakAt && this.cutInside > 0 && partly && send.size > this.cutInside) {
          this.trips.push({ sends: [send] });
          return partly(this.cutInside).then(() => Promise.reject(lost));
        }
        return Promise.reject(new Error(`Connection lost (injected by the test) before ${send.command.toUpperCase()}`));
      }
      const trip: RoundTrip = { sends: [] };
      this.trips.push(trip);
      const hook = this.hooks.get(index);
      this.hooks.delete(index);
      const gate = hook ? this.interleave(hook) : null;
      current = { trip, index, answered: false, gate };
      this.open.set(client, current);
    }
    current.trip.sends.push(send);
    const opened = current;
    // Without an interleaving the command leaves at once, exactly as the code under test sent it.
    const reply = opened.gate ? opened.gate.then(run) : run();
    return reply.then(
      (value) => {
        opened.answered = true;
        this.elementsRead += countElements(
          send.kind === 'command' ? value : (value as Array<[unknown, unknown]> | null)?.map((slot) => slot?.[1]),
        );
        return value;
      },
      (error) => {
        opened.answered = true;
        throw error;
      },
    );
  }

  private shared(send: Send): Send {
    const key = `${send.kind}:${send.command}:${send.size}`;
    const known = this.sendShapes.get(key);
    if (known) return known;
    const frozen = Object.freeze({ ...send });
    this.sendShapes.set(key, frozen);
    return frozen;
  }

  /** A trip no send can join any more, as the one shared trip of its shape. */
  private closed(trip: RoundTrip): RoundTrip {
    const key = trip.sends.map((send) => `${send.kind}:${send.command}:${send.size}`).join('|');
    const known = this.shapes.get(key);
    if (known) return known;
    const frozen = Object.freeze({ sends: Object.freeze([...trip.sends]) as Send[] });
    this.shapes.set(key, frozen);
    return frozen;
  }

  private async interleave(action: () => Promise<unknown>) {
    await this.interleaving.run(true, action);
  }

  get count() {
    return this.trips.length;
  }

  reset() {
    this.trips.length = 0;
    this.elementsRead = 0;
    this.hooks.clear();
  }

  /** "GET ×20, MGET ×1, [ZRANGE ×8 sent together] ×1": for failure messages. */
  summary(): string {
    const counts = new Map<string, number>();
    for (const trip of this.trips) {
      const label = tripLabel(trip);
      counts.set(label, (counts.get(label) ?? 0) + 1);
    }
    return [...counts].map(([label, n]) => `${label} ×${n}`).join(', ') || 'none';
  }

  /** Runs `action` and returns its round trips and the reply items it read. */
  async during<T>(action: () => Promise<T>): Promise<Cost<T>> {
    const start = this.trips.length;
    const elementsBefore = this.elementsRead;
    const result = await action();
    return { result, trips: this.trips.slice(start), elementsRead: this.elementsRead - elementsBefore };
  }

  /** Patches `client` in place so its commands are recorded here. Returns the same client. */
  watch(client: Redis): Redis {
    const target = client as any;
    for (const name of [...COMMANDS, 'call']) {
      if (name === 'multi' || name === 'exec' || name === 'pipeline' || typeof target[name] !== 'function') continue;
      const original = target[name];
      target[name] = (...args: unknown[]) => {
        // While connecting, ioredis sends its own INFO ready check and CLIENT SETINFO: not trips
        // of the code under test.
        if (CONNECTION_SETUP.has(name) && target.status !== 'ready') return original.apply(client, args);
        // A callback is ioredis talking to itself (a Cluster's CLUSTER INFO ready check): code
        // under test uses promises, and the callback already handles the reply or the error.
        if (typeof args.at(-1) === 'function') return original.apply(client, args);
        const command = name === 'call' ? String(args[0]).toLowerCase() : name;
        return this.send(client, { kind: 'command', command, size: 1 }, () => original.apply(client, args));
      };
    }
    for (const name of ['pipeline', 'multi'] as const) {
      const original = target[name];
      target[name] = (...args: unknown[]) => {
        const batch = original.apply(client, args);
        if (!batch || typeof batch.exec !== 'function' || batch.__labRecorded) return batch;
        batch.__labRecorded = true;
        // The commands queued, so that a cut inside a pipeline can send the first few of them.
        const queued: Array<[string, unknown[]]> = Array.isArray(args[0])
          ? (args[0] as unknown[][]).map(([command, ...rest]) => [String(command), rest] as [string, unknown[]])
          : [];
        const exec = batch.exec;
        const recorder: any = new Proxy(batch, {
          get(target, property, receiver) {
            const value = Reflect.get(target, property, receiver);
            if (
              typeof property !== 'string' ||
              typeof value !== 'function' ||
              property === 'exec' ||
              property.startsWith('_')
            )
              return value;
            return (...args: unknown[]) => {
              queued.push([property, args]);
              const result = value.apply(target, args);
              return result === target ? recorder : result;
            };
          },
        });
        batch.exec = (...execArgs: unknown[]) => {
          const size = queued.length;
          const kind = name === 'multi' ? 'transaction' : 'pipeline';
          const partly =
            kind === 'pipeline'
              ? (m: number) => {
                  const first = original.apply(client, []);
                  for (const [command, args] of queued.slice(0, m)) first[command](...args);
                  return first.exec();
                }
              : undefined;
          return this.send(client, { kind, command: name, size }, () => exec.apply(batch, execArgs), partly);
        };
        return recorder;
      };
    }
    const defineCommand = target.defineCommand;
    target.defineCommand = (name: string, definition: unknown) => {
      defineCommand.call(client, name, definition);
      const command = target[name];
      target[name] = (...args: unknown[]) =>
        this.send(client, { kind: 'command', command: name, size: 1 }, () => command.apply(client, args));
    };
    return client;
  }
}

function sendLabel(send: Send) {
  return send.kind === 'command' ? send.command.toUpperCase() : `${send.kind} of ${send.size}`;
}

function tripLabel(trip: RoundTrip): string {
  if (trip.sends.length === 1) return sendLabel(trip.sends[0]!);
  const counts = new Map<string, number>();
  for (const send of trip.sends) counts.set(sendLabel(send), (counts.get(sendLabel(send)) ?? 0) + 1);
  return `[${[...counts].map(([label, n]) => `${label} ×${n}`).join(' + ')} sent together]`;
}

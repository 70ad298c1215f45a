/**
 * Redis Cluster's rules, for learners without a cluster and for messages that teach.
 *
 * On a cluster every key of one command, one script or one MULTI must hash to one slot (CRC16 of
 * the key, or of the part inside its first non-empty `{…}`, mod 16384), or Redis answers CROSSSLOT;
 * and ioredis sends a pipeline to one node, so it refuses one whose keys live on several. With
 * `--cluster-rules` the mock refuses the same things, computing slots as Redis does and placing them
 * on three primaries as the local cluster does (`slotRanges`). On a real cluster nothing is refused
 * here, but both errors get the keys, their slots and the fix appended.
 * test/self/cluster-rules.test.ts compares the mock's answers with a real cluster's.
 */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import { slotRanges } from '../../src/lab/redis-cluster.ts';

const requireFromIoredis = createRequire(createRequire(import.meta.url).resolve('ioredis'));
const calculateSlot = requireFromIoredis('cluster-key-slot') as (key: string) => number;
// The same module ioredis routes with, with the kit's XGROUP/XINFO fix (ioredis-prefix.ts).
const commands = requireFromIoredis('@ioredis/commands') as {
  list: string[];
  exists(name: string): boolean;
  getKeyIndexes(name: string, args: unknown[]): number[];
};

/** Whether the mock enforces the rules in this run (the runner's --cluster-rules). */
export const CLUSTER_RULES = process.env.LAB_CLUSTER_RULES === '1';

export const CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot";
const PIPELINE_COMMAND = 'All the keys in a pipeline command should belong to the same slot';
const PIPELINE_NODES = 'All keys in the pipeline should belong to the same slots allocation group';

const PRIMARIES = slotRanges(3);

export const slotOf = (fullKey: string): number => calculateSlot(fullKey);
const nodeOf = (slot: number) => PRIMARIES.findIndex(([first, last]) => slot >= first && slot <= last);

/** The keys of a command as ioredis sees them (before the prefix). */
function keysOf(name: string, args: unknown[], scriptKeys: Map<string, number | undefined>): string[] {
  const flat = args.flat().filter((arg) => typeof arg !== 'function');
  if (scriptKeys.has(name)) {
    const declared = scriptKeys.get(name);
    const count = declared ?? Number(flat[0]);
    return flat.slice(declared === undefined ? 1 : 0, (declared === undefined ? 1 : 0) + count).map(String);
  }
  if (!commands.exists(name)) return [];
  return commands.getKeyIndexes(name, flat).map((i) => String(flat[i]));
}

interface Queued {
  name: string;
  /** Keys as the code wrote them (no prefix), for the message. */
  keys: string[];
}

function describeKeys(keys: string[], prefix: string, withNode = false): string {
  const seen = new Set<string>();
  return keys
    .filter((key) => !seen.has(key) && seen.add(key))
    .map((key) => {
      const slot = slotOf(prefix + key);
      return `${key} (slot ${slot}${withNode ? `, node ${nodeOf(slot) + 1}` : ''})`;
    })
    .join(', ');
}

const PREFIX_NOTE = (prefix: string) =>
  prefix ? ` Slots are of the full key, with the test's prefix "${prefix}", which holds no hash tag.` : '';

/** The learner's own keys with a shared tag, e.g. {report:7} and {report:7}:lock, when they share a start. */
function taggedExample(keys: string[]): string {
  const unique = [...new Set(keys)].filter((key) => !key.includes('{'));
  let common = unique[0] ?? '';
  for (const key of unique) while (!key.startsWith(common)) common = common.slice(0, -1);
  const tag = common.replace(/[:._-]+$/, '');
  if (unique.length < 2 || !tag) return '{order:42}:items and {order:42}:total share a slot';
  const shown = unique.slice(0, 3).map((key) => `{${tag}}${key.slice(tag.length)}`);
  return `${shown.join(' and ')}${unique.length > 3 ? ' (and so on)' : ''} would share a slot`;
}

function crossSlotHelp(what: string, keys: string[], prefix: string): string {
  return (
    `${what} used keys in different hash slots: ${describeKeys(keys, prefix)}.${PREFIX_NOTE(prefix)} ` +
    'On a Redis Cluster every key of one command, script or MULTI must live in one slot, or it fails like this. ' +
    `Give the keys that must change together one hash tag, the part in braces that Redis hashes alone: ${taggedExample(keys)} ` +
    '(build every key of the step from the same tag).'
  );
}

function crossNodeHelp(keys: string[], prefix: string): string {
  return (
    `The pipeline's keys live on different nodes: ${describeKeys(keys, prefix, true)}.${PREFIX_NOTE(prefix)} ` +
    'ioredis sends a pipeline to one node of a cluster. Group the commands by node (or by hash tag), or send ' +
    'them without a pipeline, all at once (Promise.all: ioredis routes each to its node, one round trip), or ' +
    'create the client with enableAutoPipelining, which batches per node for you. A pipeline that must be ' +
    'atomic is a MULTI, and that needs one slot.'
  );
}

/** An error that reads like the cluster's and says what to do. */
function teaching(message: string, help: string, cause?: unknown): Error {
  const error = new Error(`${message}. ${help}`, cause === undefined ? undefined : { cause });
  error.name = message.startsWith('CROSSSLOT') ? 'ReplyError' : 'Error';
  return error;
}

/** A refused command, script or batch, or null. `what` names it in the message. */
function violation(batch: Queued[], prefix: string, kind: 'command' | 'pipeline' | 'transaction'): Error | null {
  for (const { name, keys } of batch) {
    if (new Set(keys.map((key) => slotOf(prefix + key))).size <= 1) continue;
    const what = kind === 'command' ? describeCommand(name) : `${describeCommand(name)} in a ${kind}`;
    return teaching(kind === 'pipeline' ? PIPELINE_COMMAND : CROSSSLOT, crossSlotHelp(what, keys, prefix));
  }
  const all = batch.flatMap((queued) => queued.keys);
  if (kind === 'transaction' && new Set(all.map((key) => slotOf(prefix + key))).size > 1) {
    // Keys on one node but two slots still fail (Redis' CROSSSLOT); on two nodes ioredis refuses first.
    const nodes = new Set(all.map((key) => nodeOf(slotOf(prefix + key))));
    return nodes.size > 1
      ? teaching(PIPELINE_NODES, crossSlotHelp('This MULTI', all, prefix))
      : teaching(CROSSSLOT, crossSlotHelp('This MULTI', all, prefix));
  }
  const firsts = batch.flatMap((queued) => queued.keys.slice(0, 1));
  if (kind === 'pipeline' && new Set(firsts.map((key) => nodeOf(slotOf(prefix + key)))).size > 1)
    return teaching(PIPELINE_NODES, crossNodeHelp(firsts, prefix));
  return null;
}

function describeCommand(name: string): string {
  return commands.exists(name) ? name.toUpperCase() : `The script "${name}"`;
}

/** Appends the keys and the fix to a cluster's own CROSSSLOT or cross-node pipeline error. */
function explained(error: unknown, batch: Queued[], prefix: string, kind: 'command' | 'pipeline' | 'transaction') {
  const message = error instanceof Error ? error.message : '';
  const all = batch.flatMap((queued) => queued.keys);
  if (message.startsWith('CROSSSLOT') || message.includes('EXECABORT'))
    return teaching(
      message,
      crossSlotHelp(kind === 'command' ? describeCommand(batch[0]!.name) : `This ${kind}`, all, prefix),
      error,
    );
  if (message === PIPELINE_NODES)
    return kind === 'transaction'
      ? teaching(message, crossSlotHelp('This MULTI', all, prefix), error)
      : teaching(
          message,
          crossNodeHelp(
            batch.flatMap((queued) => queued.keys.slice(0, 1)),
            prefix,
          ),
          error,
        );
  if (message === PIPELINE_COMMAND)
    return teaching(message, crossSlotHelp('A command in this pipeline', all, prefix), error);
  return error;
}

/** What a batch queued: an ioredis Pipeline keeps Commands (keys prefixed), the mock's batch its calls. */
function queuedOf(batch: any, prefix: string, scriptKeys: Map<string, number | undefined>): Queued[] {
  if (Array.isArray(batch._queue))
    return batch._queue
      .filter((command: any) => !['multi', 'exec'].includes(command.name))
      .map((command: any) => ({
        name: command.name,
        keys: (command.getKeys() as Array<string | Buffer>).map((key) => String(key).slice(prefix.length)),
      }));
  if (typeof batch.__labQueue === 'function')
    return (batch.__labQueue() as Array<[string, unknown[]]>).map(([name, args]) => ({
      name,
      keys: keysOf(name, args, scriptKeys),
    }));
  return [];
}

/**
 * Applies the rules to `client` in place (before the round-trip log wraps it): with `enforce`
 * (the mock under --cluster-rules) refusing what a cluster refuses, and on any client turning a
 * cluster's refusal into a message with the keys, their slots and the fix.
 */
export function applyClusterRules(client: Redis, { prefix, enforce }: { prefix: string; enforce: boolean }): Redis {
  const target = client as any;
  const scriptKeys = new Map<string, number | undefined>();
  const guard = (name: string, original: (...args: unknown[]) => unknown) =>
    function (this: unknown, ...args: unknown[]) {
      if (typeof args.at(-1) === 'function') return original.apply(client, args);
      const batch = [{ name, keys: keysOf(name, args, scriptKeys) }];
      if (enforce) {
        const refused = violation(batch, prefix, 'command');
        if (refused) return Promise.reject(refused);
      }
      const reply = original.apply(client, args) as Promise<unknown>;
      return reply.catch((error: unknown) => Promise.reject(explained(error, batch, prefix, 'command')));
    };
  for (const name of [...commands.list, 'call']) {
    if (['multi', 'exec', 'pipeline', 'call'].includes(name) || typeof target[name] !== 'function') continue;
    target[name] = guard(name, target[name]);
  }
  const call = target.call;
  target.call = (command: string, ...args: unknown[]) =>
    guard(String(command).toLowerCase(), (...rest: unknown[]) => call.call(client, command, ...rest))(...args);
  const defineCommand = target.defineCommand;
  target.defineCommand = (name: string, definition: { numberOfKeys?: number }) => {
    defineCommand.call(client, name, definition);
    scriptKeys.set(name, definition.numberOfKeys);
    target[name] = guard(name, target[name]);
  };
  for (const name of ['pipeline', 'multi'] as const) {
    const original = target[name];
    target[name] = (...args: unknown[]) => {
      const batch = original.apply(client, args);
      const kind = name === 'multi' ? 'transaction' : 'pipeline';
      if (!batch || typeof batch.exec !== 'function') return batch;
      const exec = batch.exec;
      batch.exec = (...execArgs: unknown[]) => {
        const queued = queuedOf(batch, prefix, scriptKeys);
        if (enforce) {
          const refused = violation(queued, prefix, kind);
          if (refused) return Promise.reject(refused);
        }
        return (exec.apply(batch, execArgs) as Promise<Array<[unknown, unknown]> | null>).then(
          (replies) =>
            replies?.map(([error, value]) => [error ? explained(error, queued, prefix, kind) : error, value]) ??
            replies,
          (error: unknown) => Promise.reject(explained(error, queued, prefix, kind)),
        );
      };
      return batch;
    };
  }
  return client;
}

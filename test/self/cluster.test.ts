// The kit on a Redis Cluster (with REDIS_CLUSTER, as the gate runs it), and the mock's cluster
// rules compared with what a real cluster answers.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cluster } from 'ioredis';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { slotOf } from '../kit/cluster-rules.ts';
import { crashAtEveryTrip, useFakeClock } from '../kit/index.ts';
import { closeAllLabs, createLabRedis, type LabRedis } from '../kit/redis.ts';
import { hasRedisServer, slotRanges, startThrowawayCluster, waitForPort } from '../../src/lab/redis-cluster.ts';

const CLUSTER = process.env.REDIS_CLUSTER || null;

afterEach(async () => {
  vi.useRealTimers();
  await closeAllLabs();
});

const node = (slot: number) => slotRanges(3).findIndex(([first, last]) => slot >= first && slot <= last);
/** Tags whose slots are known whatever the test's key prefix (it holds no braces). */
function tags() {
  const all = Array.from({ length: 200 }, (_, i) => `t${i}`);
  const slot = (tag: string) => slotOf(`{${tag}}`);
  const a = all[0]!;
  const otherNode = all.find((tag) => node(slot(tag)) !== node(slot(a)))!;
  const sameNodeOtherSlot = all.find((tag) => node(slot(tag)) === node(slot(a)) && slot(tag) !== slot(a))!;
  return { a, otherNode, sameNodeOtherSlot };
}
const { a, otherNode, sameNodeOtherSlot } = tags();

/** What happened, as a cluster would classify it. */
async function outcome(run: () => Promise<unknown>): Promise<string> {
  try {
    const reply = await run();
    // A pipeline keeps each command's error in its own slot.
    const failed = Array.isArray(reply) ? reply.find((entry) => Array.isArray(entry) && entry[0]) : undefined;
    return failed ? classify((failed as [Error])[0]) : 'ok';
  } catch (error) {
    return classify(error as Error);
  }
}

function classify(error: Error): string {
  if (/^(CROSSSLOT|EXECABORT)/.test(error.message)) return 'CROSSSLOT';
  if (error.message.startsWith('All keys in the pipeline')) return 'pipeline across nodes';
  if (error.message.startsWith('All the keys in a pipeline command')) return 'pipeline command across slots';
  return `other: ${error.message}`;
}

const SCENARIOS: Array<[string, (lab: LabRedis) => Promise<unknown>]> = [
  ['one key', (lab) => lab.redis.set(`{${a}}:x`, '1')],
  ['MGET in one slot', (lab) => lab.redis.mget(`{${a}}:x`, `{${a}}:y`)],
  ['MGET across slots', (lab) => lab.redis.mget(`{${a}}:x`, `{${otherNode}}:y`)],
  ['MGET across slots of one node', (lab) => lab.redis.mget(`{${a}}:x`, `{${sameNodeOtherSlot}}:y`)],
  [
    'EVAL across slots',
    (lab) => lab.redis.eval("return redis.call('get', KEYS[1])", 2, `{${a}}:x`, `{${otherNode}}:y`),
  ],
  [
    'a defined script in one slot',
    async (lab) => {
      lab.redis.defineCommand('both', { numberOfKeys: 2, lua: "return redis.call('set', KEYS[1], KEYS[2])" });
      return (lab.redis as any).both(`{${a}}:x`, `{${a}}:y`);
    },
  ],
  [
    'a defined script across slots',
    async (lab) => {
      lab.redis.defineCommand('both', { numberOfKeys: 2, lua: "return redis.call('set', KEYS[1], KEYS[2])" });
      return (lab.redis as any).both(`{${a}}:x`, `{${sameNodeOtherSlot}}:y`);
    },
  ],
  ['MULTI in one slot', (lab) => lab.redis.multi().set(`{${a}}:x`, '1').set(`{${a}}:y`, '2').exec()],
  ['MULTI across nodes', (lab) => lab.redis.multi().set(`{${a}}:x`, '1').set(`{${otherNode}}:y`, '2').exec()],
  [
    'MULTI across slots of one node',
    (lab) => lab.redis.multi().set(`{${a}}:x`, '1').set(`{${sameNodeOtherSlot}}:y`, '2').exec(),
  ],
  ['a pipeline across nodes', (lab) => lab.redis.pipeline().get(`{${a}}:x`).get(`{${otherNode}}:y`).exec()],
  [
    'a pipeline across slots of one node',
    (lab) => lab.redis.pipeline().get(`{${a}}:x`).get(`{${sameNodeOtherSlot}}:y`).exec(),
  ],
  [
    'a pipeline holding a command across slots',
    (lab) => lab.redis.pipeline().mget(`{${a}}:x`, `{${sameNodeOtherSlot}}:y`).exec(),
  ],
  [
    'commands sent together across nodes',
    (lab) => Promise.all([lab.redis.get(`{${a}}:x`), lab.redis.get(`{${otherNode}}:y`)]),
  ],
];

const EXPECTED: Record<string, string> = {
  'one key': 'ok',
  'MGET in one slot': 'ok',
  'MGET across slots': 'CROSSSLOT',
  'MGET across slots of one node': 'CROSSSLOT',
  'EVAL across slots': 'CROSSSLOT',
  'a defined script in one slot': 'ok',
  'a defined script across slots': 'CROSSSLOT',
  'MULTI in one slot': 'ok',
  'MULTI across nodes': 'pipeline across nodes',
  'MULTI across slots of one node': 'CROSSSLOT',
  'a pipeline across nodes': 'pipeline across nodes',
  'a pipeline across slots of one node': 'ok',
  'a pipeline holding a command across slots': 'pipeline command across slots',
  'commands sent together across nodes': 'ok',
};

describe('cluster rules on the mock (--cluster-rules)', () => {
  test.each(SCENARIOS)('%s: answered as a 3-primary cluster answers', async (name, run) => {
    const lab = await createLabRedis({ url: null, cluster: null, clusterRules: true });

    expect(await outcome(() => run(lab))).toBe(EXPECTED[name]);
  });

  test.runIf(CLUSTER)('every scenario gets the same answer from a real cluster', async () => {
    const answers: Record<string, string> = {};
    for (const [name, run] of SCENARIOS)
      answers[name] = await outcome(async () => run(await createLabRedis({ cluster: CLUSTER })));

    expect(answers).toEqual(EXPECTED);
  });

  test('a CROSSSLOT names the keys, their slots and the hash-tag fix', async () => {
    const lab = await createLabRedis({ url: null, cluster: null, clusterRules: true });
    lab.redis.defineCommand('acquire', { numberOfKeys: 2, lua: 'return 1' });

    const error = await (lab.redis as any).acquire('stock', 'stock:lock').catch((e: Error) => e);

    expect(error.message).toMatch(/^CROSSSLOT Keys in request don't hash to the same slot\. The script "acquire"/);
    expect(error.message).toContain('stock (slot ');
    expect(error.message).toContain('stock:lock (slot ');
    expect(error.message).toMatch(/hash tag/);
    expect(error.message, "the fix is shown on the learner's own keys").toContain('{stock} and {stock}:lock');
  });

  test('a pipeline across nodes says how to group by node or send commands together', async () => {
    const lab = await createLabRedis({ url: null, cluster: null, clusterRules: true });

    const error = await lab.redis
      .pipeline()
      .get(`{${a}}:x`)
      .get(`{${otherNode}}:y`)
      .exec()
      .catch((e: Error) => e);

    expect((error as Error).message).toMatch(/node 1|node 2|node 3/);
    expect((error as Error).message).toMatch(/Promise\.all/);
    expect((error as Error).message).toMatch(/enableAutoPipelining/);
  });

  test('without the rules the mock is one server and refuses nothing', async () => {
    const lab = await createLabRedis({ url: null, cluster: null, clusterRules: false });

    expect(await outcome(() => lab.redis.mget(`{${a}}:x`, `{${otherNode}}:y`))).toBe('ok');
  });
});

describe.runIf(CLUSTER)('the kit on a real Redis Cluster', () => {
  test('hands out Cluster clients whose keys spread over the primaries, and reads them all back', async () => {
    const lab = await createLabRedis({ cluster: CLUSTER });
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);

    await Promise.all(keys.map((key) => lab.redis.set(key, key, 'PX', 60_000)));

    expect(lab.cluster).toBe(true);
    expect(lab.redis).toBeInstanceOf(Cluster);
    expect(await lab.keys()).toEqual([...keys].sort());
    const owners = new Set(keys.map((key) => node(slotOf(`${lab.prefix}${key}`))));
    expect(owners.size, 'the prefix must not pin every key to one slot').toBe(3);
    expect(await lab.ttlMs('k1')).toBeGreaterThan(59_000);
    expect((await lab.dump()).find((entry) => entry.key === 'k2')).toMatchObject({ type: 'string', items: ['k2'] });
  });

  test('counts commands sent together to several nodes as one round trip, and a CROSSSLOT is explained', async () => {
    const lab = await createLabRedis({ cluster: CLUSTER });

    const cost = await lab.roundTrips.during(() =>
      Promise.all([lab.redis.get(`{${a}}:x`), lab.redis.get(`{${otherNode}}:y`)]),
    );
    const error = await lab.redis.mget(`{${a}}:x`, `{${otherNode}}:y`).catch((e: Error) => e);

    expect(cost.trips).toHaveLength(1);
    expect((error as Error).message).toMatch(/^CROSSSLOT.*MGET used keys in different hash slots: \{t/);
  });

  test('cuts the connection at every trip and ages keys with the fake clock', async () => {
    const cuts: number[] = [];
    await crashAtEveryTrip({
      arrange: async () => ({ lab: await createLabRedis({ cluster: CLUSTER }) }),
      act: async ({ lab }) => {
        await lab.redis.set('a', '1');
        await lab.redis.set('b', '2');
      },
      check: async ({ lab }, at) => {
        cuts.push(at.trip);
        expect(await lab.keys()).toEqual(['a', 'b'].slice(0, Math.min(at.trip, 2)));
      },
    });
    const lab = await createLabRedis({ cluster: CLUSTER });
    const clock = useFakeClock(lab);
    await lab.redis.set('short', '1', 'PX', 1_000);
    await lab.redis.set('long', '1', 'PX', 10_000);

    await clock.advance(2_000);

    expect(cuts).toEqual([0, 1, 2]);
    expect(await lab.keys()).toEqual(['long']);
    expect(await lab.ttlMs('long')).toBeLessThanOrEqual(8_000);
  });

  test('a lab standing for one node keeps its keys in one slot; close() removes keys on every primary', async () => {
    const shard = await createLabRedis({ cluster: CLUSTER, database: 3 });
    const lab = await createLabRedis({ cluster: CLUSTER });
    await shard.redis.mset('x', '1', 'y', '2');
    await Promise.all(['p', 'q', 'r', 's', 't'].map((key) => lab.redis.set(key, '1')));
    const admin = new Cluster([CLUSTER!]);

    await lab.close();
    const left = await Promise.all(
      admin.nodes('master').map((n) => n.scan('0', 'MATCH', `${lab.prefix}*`, 'COUNT', 1000)),
    );

    expect(await shard.keys()).toEqual(['x', 'y']);
    expect(left.flatMap(([, keys]) => keys)).toEqual([]);
    admin.disconnect();
  });
});

describe.runIf(hasRedisServer())('the throwaway cluster (--cluster)', () => {
  test('comes up with three primaries serving every slot, and leaves no process and no file behind', async () => {
    const before = new Set(fs.readdirSync(os.tmpdir()).filter((name) => name.startsWith('sdl-cluster-')));
    const cluster = await startThrowawayCluster();
    const folder = fs.readdirSync(os.tmpdir()).find((name) => name.startsWith('sdl-cluster-') && !before.has(name));
    const client = new Cluster([cluster.url]);
    await client.set('x', '1');
    const primaries = client.nodes('master').length;
    client.disconnect();

    await cluster.stop();

    expect(primaries).toBe(3);
    expect(folder, 'the cluster keeps its node files in a temporary folder').toBeDefined();
    expect(fs.existsSync(path.join(os.tmpdir(), folder!)), 'the folder is removed').toBe(false);
    for (const port of cluster.ports) expect(await waitForPort(port, 1), `nothing listens on ${port}`).toBe(false);
  });
});

import type { Redis } from 'ioredis';
import { describe, expect, test } from 'vitest';
import { ShardedCache } from '@impl/sharded-cache/sharded-cache.ts';
import { createLabRedis, randomId, randomInteger, randomText, shuffle, type LabRedis } from '../kit/index.ts';

type ShardedCacheModule = typeof import('@impl/sharded-cache/sharded-cache.ts');

const VIRTUAL_NODES = 160;
/**
 * The spread the README promises at 160 virtual nodes: the busiest node holds at most 1.4 × the
 * mean. A node's share at 160 points varies by ~8% (1/√160) plus ~3% from sampling 10,000 keys, so
 * 1.4 is ~4.7 standard deviations: a correct ring fails it about once in 100,000 runs, while one
 * point per node or a weak hash lands far above it.
 */
const MAX_LOAD_OVER_MEAN = 1.4;
/** A new Nth node may take up to 1.5 / N of the keys (the ideal is 1 / N). */
const MOVE_ALLOWANCE = 1.5;

interface Node {
  name: string;
  lab: LabRedis;
}

/**
 * Cache nodes, each its own lab (its own mock Redis, or its own keyspace on one real server), so
 * the suite can read every node's Redis raw and count the round trips sent to each node.
 */
async function cluster(count: number) {
  const nodes: Node[] = [];
  for (let i = 0; i < count; i++) nodes.push(await node());
  return nodes;
}

// On a real server each node is a logical database of its own (16 by default): keys of one node
// cannot be seen through another's client, as with separate servers.
let nodesMade = 0;
async function node(): Promise<Node> {
  return { name: randomId('cache'), lab: await createLabRedis({ database: nodesMade++ % 16 }) };
}

const clientsOf = (nodes: Node[]): Record<string, Redis> =>
  Object.fromEntries(nodes.map((entry) => [entry.name, entry.lab.redis]));

/** A cache over `nodes`, given in this order. */
const cacheOver = (nodes: Node[], impl: ShardedCacheModule['ShardedCache'] = ShardedCache) =>
  new impl({ nodes: clientsOf(nodes), virtualNodes: VIRTUAL_NODES });

let processes = 0;

/**
 * The implementation loaded a second time, as a module instance of its own: what another
 * application server (another process) runs.
 */
async function loadAnotherProcess(): Promise<ShardedCacheModule> {
  // A specifier never used before (not seeded data: it only names a fresh module instance), so a
  // watch session that re-runs the suite after an edit never gets a copy cached from before it.
  const specifier = `@impl/sharded-cache/sharded-cache.ts?process=${++processes}-${process.hrtime.bigint()}`;
  return (await import(/* @vite-ignore */ specifier)) as ShardedCacheModule;
}

const keysOf = (count: number, prefix = 'user') => Array.from({ length: count }, () => randomId(prefix));
const percent = (fraction: number) => `${(fraction * 100).toFixed(1)}%`;

/** The nodes whose Redis holds `key`, read raw. */
async function holders(nodes: Node[], key: string): Promise<Node[]> {
  const found: Node[] = [];
  for (const entry of nodes) if ((await entry.lab.raw.exists(key)) === 1) found.push(entry);
  return found;
}

const names = (nodes: Node[]) => nodes.map((entry) => entry.name).join(', ') || 'none';

function resetTrips(nodes: Node[]) {
  for (const entry of nodes) entry.lab.roundTrips.reset();
}

/** Makes every command to this node's client reject, as when its server is down. */
function takeDown(entry: Node) {
  entry.lab.roundTrips.breakAfter(0);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error ?? new Error(String(error));
  }
  return undefined;
}

/** A failure message from its parts: what happened, what was expected, what it costs in production. */
const teach = (happened: string, expected: string, cost: string) => `${happened}. ${expected}. ${cost}`;

const describeError = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

describe('core', () => {
  test.each([3, 5, 7, 10])(
    'placement is even: 10,000 keys on %i nodes, the busiest node holds at most 1.4 × the mean',
    async (count) => {
      const nodes = await cluster(count);
      const cache = cacheOver(nodes);
      const keys = keysOf(10_000);

      const load = new Map(nodes.map((entry) => [entry.name, 0]));
      for (const key of keys) {
        const owner = cache.nodeFor(key);
        load.set(owner, (load.get(owner) ?? 0) + 1);
      }

      const unknown = [...load.keys()].filter((name) => !nodes.some((entry) => entry.name === name));
      expect(unknown, `nodeFor() returned names that are not nodes of the ring: ${unknown.join(', ')}`).toEqual([]);
      const mean = keys.length / count;
      const busiest = Math.max(...load.values());
      const loads = [...load.values()].join(', ');
      const happened = `with ${VIRTUAL_NODES} virtual nodes on ${count} nodes, the busiest node holds ${busiest} of ${keys.length} keys, ${(busiest / mean).toFixed(2)} × the mean (loads: ${loads})`;
      const expected =
        `At most ${MAX_LOAD_OVER_MEAN} × is expected: give every node virtualNodes points, each from a well-mixed hash of ` +
        '`${name}#${i}` (MD5 or SHA-1 prefix, FNV-1a with a finalizer); one point per node, or a weak hash that puts ' +
        'name#0, name#1… side by side, leaves the arcs uneven';
      const cost =
        'In production the busiest node fills up and runs hot first, and you pay for capacity the others never use';
      expect(busiest / mean, teach(happened, expected, cost)).toBeLessThanOrEqual(MAX_LOAD_OVER_MEAN);
    },
  );

  test.each([3, 6, 9])(
    'adding a node to %i moves only about 1/N of the keys, all of them to the new node; removing one moves only its own',
    async (count) => {
      const nodes = await cluster(count);
      const cache = cacheOver(nodes);
      const keys = keysOf(10_000);
      const before = keys.map((key) => cache.nodeFor(key));
      const added = await node();

      cache.addNode(added.name, added.lab.redis);
      const after = keys.map((key) => cache.nodeFor(key));

      const moved = keys.filter((_, i) => before[i] !== after[i]).length;
      const betweenOld = keys.filter((_, i) => before[i] !== after[i] && after[i] !== added.name).length;
      const total = count + 1;
      const share = moved / keys.length;
      expect(
        betweenOld,
        teach(
          `adding a node moved ${betweenOld} of ${keys.length} keys between nodes that were already there`,
          'Only the new node may take keys; `hash(key) % N`, and placements that reshuffle list positions, move the others too',
          'Each of those keys is a cold miss that hits the database after every resize',
        ),
      ).toBe(0);
      expect(
        share,
        teach(
          `adding a node moved ${percent(share)} of the keys (${moved} of ${keys.length}) when growing from ${count} to ${total} nodes`,
          `A consistent-hash ring moves about 1/${total} (${percent(1 / total)}); at most ${percent(MOVE_ALLOWANCE / total)} is accepted`,
          'Every moved key is a miss, so a resize that moves most keys empties the cache in one step',
        ),
      ).toBeLessThanOrEqual(MOVE_ALLOWANCE / total);

      const removed = nodes[randomInteger(0, nodes.length - 1)]!;
      cache.removeNode(removed.name);
      const afterRemoval = keys.map((key) => cache.nodeFor(key));
      const strayed = keys.filter((_, i) => after[i] !== afterRemoval[i] && after[i] !== removed.name).length;
      expect(
        strayed,
        teach(
          `removing node ${removed.name} moved keys of the others: ${strayed} keys that it did not own changed node`,
          "Only the removed node's keys may move, each to the next point clockwise",
          'Otherwise losing one server turns into a cache-wide miss storm',
        ),
      ).toBe(0);
      expect(
        afterRemoval.filter((owner) => owner === removed.name).length,
        `after removeNode("${removed.name}") nodeFor() still returns the removed node`,
      ).toBe(0);
    },
  );

  test('placement depends only on the set of nodes: instances that got them in another order, or added them later, agree', async () => {
    const nodes = await cluster(randomInteger(4, 7));
    const extra = await node();
    const keys = keysOf(2_000);
    const reference = cacheOver(nodes);
    const reordered = cacheOver(shuffle(nodes));
    const grown = (() => {
      const order = shuffle(nodes);
      const cache = cacheOver(order.slice(0, 2));
      for (const entry of order.slice(2)) cache.addNode(entry.name, entry.lab.redis);
      return cache;
    })();
    const shrunk = (() => {
      const cache = cacheOver(shuffle([...nodes, extra]));
      cache.removeNode(extra.name);
      return cache;
    })();

    const instances = [
      ['an instance given the same nodes in another order', reordered],
      ['an instance built with two of the nodes that then had the others added, in another order', grown],
      ['an instance built with one more node that was then removed', shrunk],
    ] as const;
    for (const [what, other] of instances) {
      const differ = keys.filter((key) => other.nodeFor(key) !== reference.nodeFor(key));
      expect(
        differ.length,
        teach(
          `${what} and the first instance disagree on the node of ${differ.length} of ${keys.length} keys (first: "${differ[0]}")`,
          'Placement must depend only on the node names and virtualNodes: hash the names, sort the points (ties by name), never use list positions, insertion order or a random salt',
          'Two application servers that disagree write a key to one node and read it from another: both miss forever',
        ),
      ).toBe(0);
    }
  });

  test('placement is the same in another process: the module loaded again agrees on every key', async () => {
    const nodes = await cluster(randomInteger(3, 6));
    const keys = keysOf(2_000);
    const here = cacheOver(nodes);

    const other = await loadAnotherProcess();
    const there = cacheOver(shuffle(nodes), other.ShardedCache);

    const differ = keys.filter((key) => there.nodeFor(key) !== here.nodeFor(key));
    expect(
      differ.length,
      teach(
        `the same nodes, in another process (the module loaded a second time), place ${differ.length} of ${keys.length} keys on another node`,
        'Every process must compute the same owner: no Math.random(), no salt drawn at startup, only a deterministic hash of names and keys',
        'Each application server would write and read its own copy of every key, and the hit rate falls with each server you add',
      ),
    ).toBe(0);
  });

  test('set stores each value under its key on the node nodeFor() names, with a TTL in seconds; get and delete use that node', async () => {
    const nodes = await cluster(5);
    const cache = cacheOver(nodes);
    const ttlSeconds = randomInteger(60, 3_600);
    const entries = keysOf(40).map((key) => [key, randomText(3)] as const);

    for (const [key, value] of entries) await cache.set(key, value, { ttlSeconds });

    for (const [key, value] of entries) {
      const owner = cache.nodeFor(key);
      const found = await holders(nodes, key);
      expect(
        names(found),
        teach(
          `"${key}" is not on the node nodeFor() names ("${owner}") alone; it is on: ${names(found)}`,
          'set() must write the key itself (no prefix or encoding of the name) to its owner',
          'A reader routed by the ring misses it, and a copy elsewhere only takes memory',
        ),
      ).toBe(owner);
      const lab = nodes.find((entry) => entry.name === owner)!.lab;
      expect(await lab.raw.get(key), `node "${owner}" holds another value for "${key}"`).toBe(value);
      const ttlMs = await lab.ttlMs(key);
      expect(
        ttlMs,
        teach(
          `"${key}" was stored with no TTL`,
          'Set EX ttlSeconds with the value, in the same command',
          'A value nobody rewrites stays forever and the node fills with dead keys',
        ),
      ).not.toBe(-1);
      expect(
        ttlMs > (ttlSeconds - 2) * 1000 && ttlMs <= ttlSeconds * 1000,
        teach(
          `"${key}" has a TTL of ${ttlMs} ms, but ttlSeconds is ${ttlSeconds}`,
          'Check the unit: EX takes seconds, PX milliseconds',
          'A TTL 1000 × too long serves stale data for hours; 1000 × too short makes every read a miss',
        ),
      ).toBe(true);
      expect(await cache.get(key), `get("${key}") must return the value set() stored`).toBe(value);
    }
    expect(await cache.get(randomId('absent')), 'get() of a key never set must return null').toBeNull();

    const [deleted] = entries[randomInteger(0, entries.length - 1)]!;
    await cache.delete(deleted);
    expect(names(await holders(nodes, deleted)), `after delete("${deleted}") a node still holds it`).toBe('none');
    expect(await cache.get(deleted), 'get() after delete() must return null').toBeNull();
  });

  test('getMany returns every value in input order, duplicates and misses included, with one round trip per node involved', async () => {
    const nodes = await cluster(6);
    const cache = cacheOver(nodes);
    const stored = new Map(keysOf(40).map((key) => [key, randomText(2)]));
    for (const [key, value] of stored) await cache.set(key, value, { ttlSeconds: 600 });
    // Leave one node out of the batch, so that a request sent to every node shows.
    const skipped = cache.nodeFor([...stored.keys()][0]!);
    const present = [...stored.keys()].filter((key) => cache.nodeFor(key) !== skipped);
    const missing = keysOf(5, 'absent').filter((key) => cache.nodeFor(key) !== skipped);
    const request = shuffle([...present, ...present.slice(0, 4), ...missing]);
    resetTrips(nodes);

    const values = await cache.getMany(request);

    expect(
      values,
      teach(
        `getMany of ${request.length} keys returned other values than the keys hold`,
        'It must return one entry per key, in input order: result[i] is the value of keys[i] (duplicates each get it), null for a miss',
        "Values attached to the wrong keys serve one user another user's data",
      ),
    ).toEqual(request.map((key) => stored.get(key) ?? null));
    for (const entry of nodes) {
      const involved = request.some((key) => cache.nodeFor(key) === entry.name);
      const trips = entry.lab.roundTrips.count;
      expect(
        trips,
        teach(
          `getMany of ${request.length} keys made ${trips} round trips to node "${entry.name}" (${entry.lab.roundTrips.summary()}), which ${involved ? 'holds some of them' : 'holds none of them'}`,
          `Expected ${involved ? 1 : 0}: group the keys by node and send one MGET (or one pipeline) per node involved, none to the others`,
          'A round trip per key makes a page of 50 keys wait 50 network latencies',
        ),
      ).toBe(involved ? 1 : 0);
    }
  });

  test('after addNode, set and get route every key to its new owner', async () => {
    const nodes = await cluster(4);
    const cache = cacheOver(nodes);
    const keys = keysOf(60);
    for (const key of keys) await cache.set(key, randomText(2), { ttlSeconds: 600 });
    await cache.getMany(keys);
    const added = await node();

    cache.addNode(added.name, added.lab.redis);
    const values = new Map(keys.map((key) => [key, randomText(3)]));
    for (const [key, value] of values) await cache.set(key, value, { ttlSeconds: 600 });

    const moved = keys.filter((key) => cache.nodeFor(key) === added.name);
    expect(moved.length, `no key moved to the added node "${added.name}" out of ${keys.length}`).toBeGreaterThan(0);
    for (const key of moved) {
      const found = await holders([added], key);
      expect(
        names(found),
        teach(
          `after addNode, "${key}" belongs to "${added.name}" (nodeFor says so) but set() did not write it there: it is not on the node nodeFor() names`,
          'Every command must follow the ring as it is now; drop any routing memo or copy of the ring kept from before the resize',
          'Writes that go to the old owner land where readers that follow the ring never look',
        ),
      ).toBe(added.name);
      expect(await cache.get(key), `get("${key}") after addNode must read the value from its new owner`).toBe(
        values.get(key),
      );
    }
    for (const key of keys) {
      const value = await added.lab.raw.get(key);
      if (cache.nodeFor(key) !== added.name)
        expect(value, `"${key}" was written to the added node although it belongs to another`).toBeNull();
    }
    expect(await cache.getMany(keys), 'getMany after addNode must return every value just set').toEqual(
      keys.map((key) => values.get(key)),
    );
  });

  test('after removeNode no command goes to the removed node, and its keys are served by the others', async () => {
    const nodes = await cluster(5);
    const cache = cacheOver(nodes);
    const keys = keysOf(60);
    for (const key of keys) await cache.set(key, randomText(2), { ttlSeconds: 600 });
    await cache.getMany(keys);
    for (const key of keys) await cache.get(key);
    const removed = nodes[randomInteger(0, nodes.length - 1)]!;

    cache.removeNode(removed.name);
    resetTrips(nodes);
    const owners = keys.map((key) => cache.nodeFor(key));
    const values = new Map(keys.map((key) => [key, randomText(3)]));
    for (const [key, value] of values) await cache.set(key, value, { ttlSeconds: 600 });
    const read = await cache.getMany(keys);
    for (const key of keys) await cache.get(key);
    await cache.delete(keys[0]!);

    expect(
      owners.filter((owner) => owner === removed.name).length,
      `after removeNode("${removed.name}"), nodeFor() still names the removed node for some keys: remove its points from the ring`,
    ).toBe(0);
    expect(
      removed.lab.roundTrips.count,
      teach(
        `after removeNode("${removed.name}") the removed node still received ${removed.lab.roundTrips.count} round trips (${removed.lab.roundTrips.summary()})`,
        'Drop its points, its client and any routing memo when it is removed',
        'Its client may be closed next, or its server gone: every one of those commands would fail or hang',
      ),
    ).toBe(0);
    expect(read, 'getMany after removeNode must return every value just set').toEqual(
      keys.map((key) => values.get(key)),
    );
  });

  test('a node that is down reads as a miss: get() of its keys returns null, get() of the other keys still returns them', async () => {
    const nodes = await cluster(4);
    const cache = cacheOver(nodes);
    const stored = new Map(keysOf(40).map((key) => [key, randomText(2)]));
    for (const [key, value] of stored) await cache.set(key, value, { ttlSeconds: 600 });
    const down = nodes.find((entry) => [...stored.keys()].some((key) => cache.nodeFor(key) === entry.name))!;

    takeDown(down);

    for (const [key, value] of stored) {
      const onDown = cache.nodeFor(key) === down.name;
      const outcome = await cache.get(key).then(
        (result) => ({ result }),
        (error: unknown) => ({ error }),
      );
      expect(
        'error' in outcome ? `rejected (${describeError(outcome.error)})` : outcome.result,
        onDown
          ? teach(
              `get("${key}") of a key on the down node "${down.name}" did not read as a miss`,
              "It must resolve to null: catch the node's error",
              "A cache miss is safe (the caller reads the database); an exception turns one cache node's outage into failed requests",
            )
          : `get("${key}") of a key on a healthy node must still return its value while "${down.name}" is down`,
      ).toBe(onDown ? null : value);
    }
  });

  test("a node that is down does not fail getMany: the other nodes' values come back, its keys as misses", async () => {
    const nodes = await cluster(4);
    const cache = cacheOver(nodes);
    const stored = new Map(keysOf(40).map((key) => [key, randomText(2)]));
    for (const [key, value] of stored) await cache.set(key, value, { ttlSeconds: 600 });
    const down = nodes.find((entry) => [...stored.keys()].some((key) => cache.nodeFor(key) === entry.name))!;
    const request = shuffle([...stored.keys()]);

    takeDown(down);
    const error = await rejection(cache.getMany(request));
    const values = error === undefined ? await cache.getMany(request) : [];

    expect(
      error === undefined ? 'resolved' : `rejected (${describeError(error)})`,
      teach(
        `getMany over ${nodes.length} nodes with one down node ("${down.name}") rejected the whole batch`,
        'A Promise.all over the nodes rejects as soon as one node fails: catch per node and fill its keys with null',
        "Otherwise one server's outage breaks every page that reads a batch",
      ),
    ).toBe('resolved');
    expect(
      values,
      `with "${down.name}" down, getMany must return the healthy nodes' values in input order and null for the down node's keys`,
    ).toEqual(request.map((key) => (cache.nodeFor(key) === down.name ? null : stored.get(key))));
  });

  test('set and delete of a key on a down node reject with an error that names the node; other nodes are unaffected', async () => {
    const nodes = await cluster(4);
    const cache = cacheOver(nodes);
    const keys = keysOf(40);
    const down = nodes[randomInteger(0, nodes.length - 1)]!;
    const onDown = keys.filter((key) => cache.nodeFor(key) === down.name);
    const elsewhere = keys.filter((key) => cache.nodeFor(key) !== down.name);
    expect(onDown.length, 'the test needs keys on the down node').toBeGreaterThan(0);

    takeDown(down);
    const value = randomText(2);

    for (const [what, run] of [
      ['set', (key: string) => cache.set(key, value, { ttlSeconds: 600 })],
      ['delete', (key: string) => cache.delete(key)],
    ] as const) {
      const error = await rejection(run(onDown[0]!));
      expect(
        error !== undefined,
        teach(
          `${what}() of a key on the down node "${down.name}" resolved`,
          'It must reject, with an error that names the node',
          'A write that silently fails lets the caller believe a value was stored, or a stale one deleted',
        ),
      ).toBe(true);
      const message = error instanceof Error ? error.message : String(error);
      expect(
        message.includes(down.name),
        teach(
          `${what}() on the down node rejected with "${message}", which does not name the node "${down.name}"`,
          'Say which node failed (ShardNodeError does)',
          'Whoever is paged must know which server to look at',
        ),
      ).toBe(true);
      const healthy = await rejection(run(elsewhere[0]!));
      expect(
        healthy,
        `${what}() of a key on a healthy node rejected while "${down.name}" was down: only the down node's keys may fail`,
      ).toBeUndefined();
    }
  });
});

describe('staff', () => {
  /** A ring of `count` nodes and a hot key stored on `replicas` of them. */
  async function hotKey(count: number, replicas: number) {
    const nodes = await cluster(count);
    const cache = cacheOver(nodes);
    const key = randomId('trending');
    const value = randomText(4);
    const ttlSeconds = randomInteger(60, 3_600);
    cache.markHot(key, replicas);
    await cache.set(key, value, { ttlSeconds });
    const replicaNodes = await holders(nodes, key);
    return { nodes, cache, key, value, ttlSeconds, replicaNodes };
  }

  test('a hot key is stored on `replicas` distinct nodes, its owner among them, with the same value and the same TTL', async () => {
    const replicas = randomInteger(2, 4);
    const { nodes, cache, key, value, ttlSeconds, replicaNodes } = await hotKey(6, replicas);

    expect(
      replicaNodes.length,
      teach(
        `markHot("${key}", ${replicas}) then set(): the key is on ${replicaNodes.length} distinct nodes (${names(replicaNodes)}), ${replicas} expected`,
        'Walk clockwise, skip points of nodes already chosen (consecutive points often belong to one node), and write every replica',
        'A replica counted twice, or never written, leaves the hot key on fewer nodes and their load undivided',
      ),
    ).toBe(replicas);
    expect(
      replicaNodes.map((entry) => entry.name),
      `the key's owner "${cache.nodeFor(key)}" must be one of its replicas`,
    ).toContain(cache.nodeFor(key));
    const ttls: number[] = [];
    for (const entry of replicaNodes) {
      expect(await entry.lab.raw.get(key), `replica "${entry.name}" holds another value`).toBe(value);
      ttls.push(await entry.lab.ttlMs(key));
    }
    expect(
      ttls.every((ttl) => ttl > (ttlSeconds - 2) * 1000 && ttl <= ttlSeconds * 1000),
      teach(
        `the replicas' TTLs are ${ttls.join(', ')} ms`,
        `Every replica must have the same TTL, ttlSeconds = ${ttlSeconds} s`,
        'A replica that outlives the value serves it after it should have expired',
      ),
    ).toBe(true);

    const everywhere = randomId('viral');
    cache.markHot(everywhere, nodes.length + 3);
    await cache.set(everywhere, value, { ttlSeconds });
    expect(
      (await holders(nodes, everywhere)).length,
      `markHot with more replicas than the ${nodes.length} nodes must store the key on every node (distinct nodes, each once)`,
    ).toBe(nodes.length);
  });

  test('the replicas are the next distinct nodes clockwise: the nodes that would own the key next if its owner went away', async () => {
    const nodes = await cluster(7);
    const cache = cacheOver(nodes);
    const replicas = 3;
    const keys = keysOf(12, 'trending');

    for (const key of keys) {
      cache.markHot(key, replicas);
      await cache.set(key, randomText(2), { ttlSeconds: 600 });
    }

    for (const key of keys) {
      const expected: string[] = [];
      let remaining = nodes;
      while (expected.length < replicas) {
        const owner = cacheOver(remaining).nodeFor(key);
        expected.push(owner);
        remaining = remaining.filter((entry) => entry.name !== owner);
      }
      const actual = (await holders(nodes, key)).map((entry) => entry.name);
      expect(
        [...actual].sort(),
        teach(
          `"${key}" is on ${actual.join(', ')}`,
          `Its replicas must be the nodes that would own it next: its owner, then the owner with that one removed, and so on (${expected.join(', ')}), i.e. the next distinct nodes clockwise`,
          'Then losing the owner leaves the new owner warm, instead of a miss storm on the hottest key',
        ),
      ).toEqual([...expected].sort());
    }
  });

  test('reads of a hot key are spread at random: each replica serves a fair share of 300 reads', async () => {
    const replicas = randomInteger(2, 3);
    const { nodes, cache, key, value, replicaNodes } = await hotKey(5, replicas);
    expect(replicaNodes.length, 'the hot key must be on its replicas before reads are counted').toBe(replicas);
    resetTrips(nodes);

    const reads: (string | null)[] = [];
    for (let i = 0; i < 300; i++) reads.push(await cache.get(key));

    expect(reads.filter((read) => read !== value).length, 'every read of the hot key must return its value').toBe(0);
    const fair = Math.floor(300 / replicas / 2);
    for (const entry of nodes) {
      const served = entry.lab.roundTrips.count;
      const isReplica = replicaNodes.includes(entry);
      if (isReplica)
        expect(
          served,
          teach(
            `replica "${entry.name}" served ${served} of 300 reads of the hot key`,
            `With ${replicas} replicas each should serve about ${Math.round(300 / replicas)}, at least ${fair} (its fair share): pick a replica at random per read`,
            'Reading the owner first leaves it with the whole load, and the copies buy nothing',
          ),
        ).toBeGreaterThanOrEqual(fair);
      else expect(served, `node "${entry.name}" is no replica of the hot key but served ${served} reads`).toBe(0);
    }
  });

  test('after a set no replica serves the old value, and after a delete no replica serves the deleted value', async () => {
    const { nodes, cache, key, replicaNodes } = await hotKey(6, 3);
    const newer = randomText(4);

    await cache.set(key, newer, { ttlSeconds: 600 });
    const afterSet: (string | null)[] = [];
    for (let i = 0; i < 60; i++) afterSet.push(await cache.get(key));
    const rawAfterSet = await Promise.all(nodes.map((entry) => entry.lab.raw.get(key)));

    expect(
      afterSet.filter((read) => read !== newer).length,
      teach(
        `after set() of a new value, ${afterSet.filter((read) => read !== newer).length} of 60 reads of the hot key returned the old value (or none)`,
        'set() must write every replica',
        'Otherwise a random read serves stale data after every update',
      ),
    ).toBe(0);
    expect(
      rawAfterSet.filter((held) => held !== null && held !== newer).length,
      'after set(), a node still holds the old value of the hot key',
    ).toBe(0);

    await cache.delete(key);
    const left = await holders(nodes, key);
    const afterDelete: (string | null)[] = [];
    for (let i = 0; i < 60; i++) afterDelete.push(await cache.get(key));

    expect(
      names(left),
      teach(
        `after delete() the hot key is still on ${names(left)} (its replicas were ${names(replicaNodes)})`,
        'Delete it from every replica',
        'A replica left behind serves the deleted value to a share of the readers until its TTL runs out',
      ),
    ).toBe('none');
    expect(
      afterDelete.filter((read) => read !== null).length,
      `after delete(), ${afterDelete.filter((read) => read !== null).length} of 60 reads still returned the deleted value`,
    ).toBe(0);
  });

  test('a down replica is skipped: every read of the hot key still returns its value, and a set names the down node', async () => {
    const { cache, key, value, replicaNodes } = await hotKey(5, 3);
    expect(replicaNodes.length, 'the hot key must be on its 3 replicas').toBe(3);
    const down = replicaNodes[randomInteger(0, replicaNodes.length - 1)]!;

    takeDown(down);
    const reads: (string | null)[] = [];
    for (let i = 0; i < 60; i++) reads.push(await cache.get(key).catch(() => 'rejected'));
    const error = await rejection(cache.set(key, randomText(2), { ttlSeconds: 600 }));

    const missed = reads.filter((read) => read !== value).length;
    expect(
      missed,
      teach(
        `with one down replica ("${down.name}") of 3, ${missed} of 60 reads of the hot key returned null or rejected`,
        'When the replica you picked fails, try another',
        "The copies are there so that one node's outage does not cost the hottest key's reads",
      ),
    ).toBe(0);
    const message = error instanceof Error ? error.message : String(error);
    expect(
      error !== undefined && message.includes(down.name),
      `set() of the hot key with replica "${down.name}" down must reject with an error that names the node; it ${error === undefined ? 'resolved' : `rejected with "${message}"`}`,
    ).toBe(true);
  });
});

// Pins the corrected mock to Redis 7's replies (docs/redis-mock.md). With REDIS_URL set, each
// case also runs on the real server and the two must agree.
import { Redis } from 'ioredis';
import { afterAll, describe, expect, test } from 'vitest';
import { createMockRedis } from '../kit/mock-redis.ts';

type Case = (r: Redis) => Promise<unknown>;
let port = 47_000;
const real = process.env.REDIS_URL
  ? new Redis(process.env.REDIS_URL, { keyPrefix: `lab:mockcheck:${process.pid}:` })
  : null;
afterAll(async () => {
  if (!real) return;
  const keys = await real.keys(`lab:mockcheck:${process.pid}:*`);
  if (keys.length) await new Redis(process.env.REDIS_URL!).unlink(...keys);
  real.disconnect();
});

const cases: Record<string, [Case, unknown]> = {
  'SET accepts lower-case px': [
    async (r) => {
      await r.set('a', '1', 'px' as 'PX', 5000);
      return (await r.pttl('a')) > 0;
    },
    true,
  ],
  'SET accepts lower-case nx': [
    async (r) => {
      await r.set('b', '1');
      return r.set('b', '2', 'nx' as 'NX');
    },
    null,
  ],
  'SET KEEPTTL keeps the TTL': [
    async (r) => {
      await r.set('kt', '1', 'EX', 100);
      await r.set('kt', '2', 'KEEPTTL');
      return r.ttl('kt');
    },
    100,
  ],
  'ZPOPMAX scores are strings': [
    async (r) => {
      await r.zadd('z', 1, 'a', 2.5, 'b');
      return r.zpopmax('z');
    },
    ['b', '2.5'],
  ],
  'ZADD GT keeps the higher score': [
    async (r) => {
      await r.zadd('zg', 5, 'a');
      await r.zadd('zg', 'GT', 1, 'a');
      return r.zscore('zg', 'a');
    },
    '5',
  ],
  'ZADD nx in lower case': [
    async (r) => {
      await r.zadd('zn', 1, 'a');
      await (r as any).zadd('zn', 'nx', 5, 'a');
      return r.zscore('zn', 'a');
    },
    '1',
  ],
  'ZADD INCR returns the new score': [(r) => r.zadd('zi', 'INCR', 2, 'a'), '2'],
  'EXPIRE NX leaves an existing TTL': [
    async (r) => {
      await r.set('e', '1', 'EX', 100);
      await r.expire('e', 5, 'NX');
      return r.ttl('e');
    },
    100,
  ],
  'INCR on text fails': [
    async (r) => {
      await r.set('t', 'x');
      return r.incr('t').catch((e: Error) => e.message);
    },
    'ERR value is not an integer or out of range',
  ],
  'Lua true is 1': [(r) => r.eval('return true', 0), 1],
  'Lua false is nil': [(r) => r.eval('return false', 0), null],
  'Lua floats are truncated': [(r) => r.eval('return 3.7', 0), 3],
  'Lua tables convert element by element': [(r) => r.eval('return {1, "a", 2.5, false, 3}', 0), [1, 'a', 2, null, 3]],
  'Lua error_reply rejects': [
    (r) => r.eval("return redis.error_reply('boom')", 0).catch((e: Error) => e.message),
    'ERR boom',
  ],
  'Lua status_reply is a string': [(r) => r.eval("return redis.status_reply('FINE')", 0), 'FINE'],
  'Lua SET with lower-case px': [
    async (r) => {
      await r.eval("return redis.call('SET', KEYS[1], 'v', 'px', 5000)", 1, 'lp');
      return (await r.pttl('lp')) > 0;
    },
    true,
  ],
  'Lua numbers are stored as strings': [
    async (r) => {
      await r.eval("redis.call('SET', KEYS[1], 5.5)", 1, 'n');
      return r.get('n');
    },
    '5.5',
  ],
  'SCRIPT LOAD then EVALSHA': [async (r) => r.evalsha(String(await r.script('LOAD', 'return 1')), 0), 1],
  'pipeline errors stay in their slot': [
    async (r) => {
      await r.set('pe', 'x');
      return (await r.pipeline().incr('pe').get('pe').exec())!.map(([e, v]) => [e ? 'error' : null, v]);
    },
    [
      ['error', undefined],
      [null, 'x'],
    ],
  ],
  'WATCH aborts EXEC after another client writes a watched key (with a keyPrefix)': [
    async (r) => {
      const other = r.duplicate();
      await r.set('ww', '1');
      await r.watch('ww');
      await other.set('ww', '2');
      other.disconnect();
      return [await r.multi().set('ww', '3').exec(), await r.get('ww')];
    },
    [null, '2'],
  ],
  'WATCH aborts EXEC after the same client writes a watched key': [
    async (r) => {
      await r.watch('ws');
      await r.set('ws', '1');
      return r.multi().set('ws', '2').exec();
    },
    null,
  ],
  'EXEC ends WATCH': [
    async (r) => {
      await r.set('w', '1');
      await r.watch('w');
      await r.multi().set('w', '2').exec();
      await r.set('w', '3');
      return r.multi().set('w', '4').exec();
    },
    [[null, 'OK']],
  ],
  'Lua redis.call raises on a failing command': [
    async (r) => {
      await r.set('t', 'x');
      return r.eval("return redis.call('INCR', KEYS[1])", 1, 't').catch((e: Error) => e.message.slice(0, 43));
    },
    'ERR value is not an integer or out of range',
  ],
  'Lua redis.pcall returns an error table': [
    async (r) => {
      await r.set('t2', 'x');
      return r.eval(
        "local reply = redis.pcall('INCR', KEYS[1]); if type(reply) == 'table' and reply.err then return 'caught' end return 'missed'",
        1,
        't2',
      );
    },
    'caught',
  ],
  'Lua status replies are {ok=…} tables': [
    (r) => r.eval("local reply = redis.call('SET', KEYS[1], 'v'); return type(reply) == 'table' and reply.ok", 1, 's'),
    'OK',
  ],
  'Lua cjson round-trips': [
    (r) => r.eval('local t = cjson.decode(ARGV[1]); return cjson.encode({ n = t.n + 1 })', 0, '{"n":41}'),
    '{"n":42}',
  ],
  'Lua ZADD GT works inside scripts': [
    async (r) => {
      await r.eval("redis.call('ZADD', KEYS[1], 5, 'a'); redis.call('ZADD', KEYS[1], 'GT', 1, 'a')", 1, 'zl');
      return r.zscore('zl', 'a');
    },
    '5',
  ],
  'Lua HGETALL is a flat array': [
    async (r) => {
      await r.hset('hh', 'a', '1');
      return r.eval("return redis.call('HGETALL', KEYS[1])", 1, 'hh');
    },
    ['a', '1'],
  ],
  'Lua cannot create globals': [
    (r) =>
      r.eval('leaked = 1; return 1', 0).then(
        () => 'allowed',
        (e: Error) => (/global variable|readonly table/.test(e.message) ? 'rejected' : e.message),
      ),
    'rejected',
  ],
  'defineCommand scripts run and report their replies': [
    async (r) => {
      r.defineCommand('bump', { numberOfKeys: 1, lua: "return redis.call('INCRBY', KEYS[1], ARGV[1])" });
      return (r as any).bump('bumped', 5);
    },
    5,
  ],
  'GET on a hash is WRONGTYPE': [
    async (r) => {
      await r.hset('wh', 'a', '1');
      return r.get('wh').catch((e: Error) => e.message.slice(0, 9));
    },
    'WRONGTYPE',
  ],
  'pipeline has EVAL': [async (r) => (await r.pipeline().eval('return 7', 0).exec())![0]![1], 7],
  'a pipeline runs the corrected commands (lower-case px, ZADD GT)': [
    async (r) => {
      await r
        .pipeline()
        .set('pp', '1', 'px' as 'PX', 5000)
        .zadd('pz', 5, 'a')
        .zadd('pz', 'GT', 1, 'a')
        .exec();
      return [(await r.pttl('pp')) > 0, await r.zscore('pz', 'a')];
    },
    [true, '5'],
  ],
  'pipeline([...]) and multi([...]) take their commands as arrays': [
    async (r) => [
      await r
        .pipeline([
          ['set', 'pa', '1'],
          ['get', 'pa'],
        ])
        .exec(),
      await r.multi([['incr', 'pa']]).exec(),
    ],
    [
      [
        [null, 'OK'],
        [null, '1'],
      ],
      [[null, 2]],
    ],
  ],
  'MULTI runs with no other client in between': [
    async (r) => {
      const other = r.duplicate();
      await r.set('ma', '0');
      const tx = r.multi().incr('ma').incr('ma').get('ma').exec();
      const seen = other.get('ma');
      const [replies, between] = await Promise.all([tx, seen]);
      other.disconnect();
      return [replies!.map(([, v]) => v), between === '1' ? 'torn' : 'whole'];
    },
    [[1, 2, '2'], 'whole'],
  ],
  'a pipeline is not thenable and has a length': [
    async (r) => {
      const p = r.pipeline().get('x').get('y');
      return [typeof (p as any).then, p.length];
    },
    ['undefined', 2],
  ],
};

describe('the corrected mock answers like Redis 7', () => {
  for (const [name, [run, expected]] of Object.entries(cases)) {
    test(name, async () => {
      const mock = createMockRedis(port++, 'p:');

      const fromMock = await run(mock);

      expect(fromMock, `mock: ${name}`).toEqual(expected);
      if (real) expect(await run(real), `real Redis: ${name}`).toEqual(expected);
    });
  }

  test('an expired key that was never read does not swallow a new SET … EX', async () => {
    const mock = createMockRedis(port++);
    const realNow = Date.now;
    await mock.set('k', 'old', 'PX', 10);
    Date.now = () => realNow() + 1000;
    try {
      await mock.set('k', 'new', 'EX', 60);
      expect(await mock.get('k'), 'SET EX on an expired, unread key lost the value').toBe('new');
    } finally {
      Date.now = realNow;
    }
  });

  test('a script costs well under a millisecond once compiled', async () => {
    const mock = createMockRedis(port++);
    const script = "return redis.call('INCR', KEYS[1])";
    await mock.eval(script, 1, 'n');

    const started = performance.now();
    for (let i = 0; i < 200; i++) await mock.eval(script, 1, 'n');
    const perCallMs = (performance.now() - started) / 200;

    expect(perCallMs, 'EVAL on the mock must be cheap, or correct Lua designs time out').toBeLessThan(2);
  });

  test('blocking commands fail with a message that says what to use instead', async () => {
    const mock = createMockRedis(port++);

    const message = await mock.blmove('a', 'b', 'LEFT', 'RIGHT', 1).catch((e: Error) => e.message);

    expect(message).toMatchInlineSnapshot(
      `"BLMOVE blocks, and the exercises need calls that return at once: a blocked call would stall the test clock. Use the non-blocking form (LMOVE) and return null when nothing is ready. (The mock Redis used for grading does not implement blocking commands; see docs/redis-mock.md.)"`,
    );
  });

  test('clients of different tests do not share data; lab.connect()-style clients do', async () => {
    const a = createMockRedis(port++);
    const b = createMockRedis(port++);
    const a2 = createMockRedis(port - 2);

    await a.set('shared', '1');

    expect(await b.get('shared')).toBeNull();
    expect(await a2.get('shared')).toBe('1');
  });
});

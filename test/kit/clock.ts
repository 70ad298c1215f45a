import type { Redis } from 'ioredis';
import { vi } from 'vitest';
import type { LabRedis } from './redis.ts';

export interface LabClock {
  now(): number;
  /**
   * Moves time forward: timers due in the process fire, and keys in Redis age by `ms` (the mock
   * reads the faked Date; on a real server every key of the test has its TTL shortened by `ms`,
   * and keys whose TTL runs out are deleted, as expiry would). Pending entries of the test's
   * streams age too (their idle time grows by `ms`, owner and delivery count kept), except those
   * whose entry was deleted from the stream: XCLAIM would drop them from the PEL.
   */
  advance(ms: number): Promise<void>;
}

/**
 * Fake time for the test: Date, setTimeout and setInterval are faked; setImmediate and
 * process.nextTick stay real so promise chains and sockets keep flowing (see `settle`).
 * The setup file restores real timers after each test.
 */
export function useFakeClock(lab: LabRedis): LabClock {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    now: Date.now(),
  });
  return {
    now: () => Date.now(),
    async advance(ms) {
      if (lab.mode === 'real') await ageRealKeys(lab, ms);
      await vi.advanceTimersByTimeAsync(ms);
    },
  };
}

async function ageRealKeys(lab: LabRedis, ms: number) {
  // Keys without the prefix, which `raw` adds (on a cluster, read from every primary).
  for (const key of await lab.keys()) {
    if ((await lab.raw.type(key)) === 'stream') await agePendingEntries(lab.raw, key, ms);
    const ttl = await lab.raw.pttl(key);
    if (ttl < 0) continue;
    if (ttl - ms <= 0) await lab.raw.del(key);
    else await lab.raw.pexpire(key, ttl - ms);
  }
}

/**
 * On a real server idle times are real time: XCLAIM to the same owner with IDLE idle + ms and
 * JUSTID moves an entry's delivery time back by `ms` without changing its owner or delivery
 * count. An entry deleted from the stream is left as it is, since XCLAIM would drop it.
 */
async function agePendingEntries(raw: Redis, key: string, ms: number) {
  const groups = (await raw.xinfo('GROUPS', key)) as unknown[][];
  for (const info of groups) {
    const group = String(info[info.indexOf('name') + 1]);
    const pending = (await raw.xpending(key, group, '-', '+', 1_000_000)) as [string, string, number, number][];
    for (const [id, consumer, idleMs] of pending) {
      if ((await raw.xrange(key, id, id)).length === 0) continue;
      await raw.xclaim(key, group, consumer, 0, id, 'IDLE', idleMs + ms, 'JUSTID');
    }
  }
}

import { vi } from 'vitest';
import { scanPrefix, type LabRedis } from './redis.ts';

export interface LabClock {
  now(): number;
  /**
   * Moves time forward: timers due in the process fire, and keys in Redis age by `ms` (the mock
   * reads the faked Date; on a real server every key of the test has its TTL shortened by `ms`,
   * and keys whose TTL runs out are deleted, as expiry would).
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
  // `raw` has the key prefix; SCAN results carry it, so strip it before using raw.
  const keys = await scanPrefix(lab.raw, lab.prefix);
  for (const fullKey of keys) {
    const key = fullKey.slice(lab.prefix.length);
    const ttl = await lab.raw.pttl(key);
    if (ttl < 0) continue;
    if (ttl - ms <= 0) await lab.raw.del(key);
    else await lab.raw.pexpire(key, ttl - ms);
  }
}

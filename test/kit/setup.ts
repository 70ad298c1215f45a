// Runs before every graded suite (vitest setupFiles).
import { BroadcastChannel } from 'node:worker_threads';
import { afterEach, beforeEach, inject, vi } from 'vitest';
import { BEAT_EVERY_MS, HEARTBEAT_CHANNEL, type Heartbeat } from '../../src/lab/heartbeat.ts';
import { describeError } from '../../src/lab/report.ts';
import { randomSeed, reseed, seedFor } from './random.ts';
import { closeAllLabs } from './redis.ts';

// The runner's watchdog (src/lab/suite-runner.ts): announce each test as it starts, and beat
// while this thread's event loop turns. Created once per thread, with the real setInterval
// (the fake clock replaces the global later), and unref'd so it keeps nothing alive.
const lab = globalThis as { __labHeartbeat?: BroadcastChannel };
if (!lab.__labHeartbeat) {
  const channel = new BroadcastChannel(HEARTBEAT_CHANNEL);
  channel.unref();
  lab.__labHeartbeat = channel;
  setInterval(() => channel.postMessage({} satisfies Heartbeat), BEAT_EVERY_MS).unref();
}
const heartbeat = lab.__labHeartbeat;

// Plain vitest (no runner) gets a seed of its own; LAB_SEED repeats one.
const fallbackSeed = Number(process.env.LAB_SEED) || randomSeed();

beforeEach((context) => {
  const name = context.task.fullTestName ?? context.task.name;
  const file = context.task.file.filepath;
  reseed(seedFor(inject('labSeed') ?? fallbackSeed, name));
  heartbeat.postMessage({ test: name, file } satisfies Heartbeat);
  context.onTestFinished(({ task }) => {
    const failed = task.result?.state === 'fail';
    const message = failed ? (task.result?.errors ?? []).map(describeError).join('\n') : undefined;
    heartbeat.postMessage({
      file,
      finished: { name, status: failed ? 'fail' : 'pass', ...(message && { message }) },
    } satisfies Heartbeat);
  });
});

afterEach(async () => {
  vi.useRealTimers();
  await closeAllLabs();
});

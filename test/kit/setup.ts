// Runs before every graded suite (vitest setupFiles).
import { afterEach, vi } from 'vitest';
import { closeAllLabs } from './redis.ts';

afterEach(async () => {
  vi.useRealTimers();
  await closeAllLabs();
});

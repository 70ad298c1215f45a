import { describe, expect, it } from 'vitest';
import {
  busiestWindow,
  DEFAULT_INPUTS,
  fixedWindow,
  presetPattern,
  simulateRateLimits,
  slidingCounter,
  slidingLog,
  tokenBucket,
} from '../../src/site/simulators/rate-limit.ts';

describe('the rate-limit simulator model', () => {
  it('lets a fixed window admit twice its limit across a boundary', () => {
    // Limit 5 per 5 s: seconds 0–4 are window 0, 5–9 window 1; 5 at 4 s and 5 at 5 s each fit their window.
    const requests = presetPattern('boundary', 5, 5, 10);

    const admitted = fixedWindow(requests, 5, 5);

    expect(requests).toEqual([0, 0, 0, 0, 5, 5, 0, 0, 0, 0]);
    expect(admitted).toEqual([0, 0, 0, 0, 5, 5, 0, 0, 0, 0]);
    expect(busiestWindow(admitted, 5)).toBe(10);
  });

  it('resets a fixed window only at the next clock-aligned window', () => {
    // Limit 2 per 3 s, 3 requests every second: 2 admitted at 0 s, 0 at 1 s and 2 s, 2 again at 3 s.
    expect(fixedWindow([3, 3, 3, 3, 3, 3], 2, 3)).toEqual([2, 0, 0, 2, 0, 0]);
  });

  it('lets a sliding log admit the limit and no more in any window-long span', () => {
    // At 5 s the five entries from 4 s are still inside (0 s, 5 s]; they leave only at 9 s, when 9 − 5 = 4 ≥ 4.
    const requests = [0, 0, 0, 0, 5, 5, 0, 0, 0, 5];

    const admitted = slidingLog(requests, 5, 5);

    expect(admitted).toEqual([0, 0, 0, 0, 5, 0, 0, 0, 0, 5]);
    expect(busiestWindow(admitted, 5)).toBe(5);
  });

  it('drops a log entry exactly one window later, not before', () => {
    // Limit 1 per 2 s, one request a second: admitted at 0, rejected at 1 (0 > 1 − 2), admitted at 2 (0 ≤ 2 − 2).
    expect(slidingLog([1, 1, 1, 1, 1], 1, 2)).toEqual([1, 0, 1, 0, 1]);
  });

  it('weights the previous window by the part of it still inside the sliding window', () => {
    // Limit 5 per 5 s, one request a second. Window 0 (0–4 s) admits 5. In window 1, previous = 5:
    // 5 s: 5 × 5/5 + 0 + 1 = 6 > 5, rejected.   6 s: 5 × 4/5 + 0 + 1 = 5, admitted (current 1).
    // 7 s: 5 × 3/5 + 1 + 1 = 5, admitted.        8 s: 5 × 2/5 + 2 + 1 = 5, admitted.
    // 9 s: 5 × 1/5 + 3 + 1 = 5, admitted.        So window 1 admits 4 and window 2 starts from previous = 4:
    // 10 s: 4 + 0 + 1 = 5, admitted.             11 s: 4 × 4/5 + 1 + 1 = 5.2 > 5, rejected.
    const admitted = slidingCounter(new Array(12).fill(1), 5, 5);

    expect(admitted).toEqual([1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0]);
  });

  it('reproduces the lesson’s sliding-counter estimate of 90', () => {
    // Window 60 s, limit 100. 90 arrive at 0 s (window 0, nothing before it: all admitted). 30 arrive at
    // 79 s, 19 s into window 1: 90 × 41/60 + 30 = 91.5 ≤ 100, all admitted. At 80 s, 20 s in, the lesson's
    // case: 90 × 40/60 + 30 = 90, which leaves room for 10 of the 12 that arrive (90 + 10 = 100).
    const requests = new Array(81).fill(0);
    requests[0] = 90;
    requests[79] = 30;
    requests[80] = 12;

    const admitted = slidingCounter(requests, 100, 60);

    expect([admitted[0], admitted[79], admitted[80]]).toEqual([90, 30, 10]);
  });

  it('lets a full token bucket admit its capacity at once, then its refill rate', () => {
    // b = 5, r = 1: 5 tokens at 4 s (full since 0 s) go to the first burst; 1 token refills by 5 s.
    expect(tokenBucket([0, 0, 0, 0, 5, 5], 5, 1)).toEqual([0, 0, 0, 0, 5, 1]);
  });

  it('refills a slow bucket exactly, without rounding a tenth of a token away', () => {
    // b = 1, r = 0.1: the token spent at 0 s is back after ten refills of 0.1, at 10 s, not at 11 s.
    const requests = new Array(12).fill(1);

    const admitted = tokenBucket(requests, 1, 0.1);

    expect(admitted).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
  });

  it('caps the bucket at its capacity however long it stays idle', () => {
    // b = 3, r = 2: idle for 9 s it still holds 3, not 3 + 18.
    expect(tokenBucket([0, 0, 0, 0, 0, 0, 0, 0, 0, 9], 3, 2)[9]).toBe(3);
  });

  it('admits nothing from an empty timeline and counts an absent window as empty', () => {
    const result = simulateRateLimits({ ...DEFAULT_INPUTS, requestsPerSlot: presetPattern('clear', 5, 5) });

    expect(result.requests).toBe(0);
    expect([result.fixed, result.sliding, result.bucket].map((r) => [r.admitted, r.rejected])).toEqual([
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
    expect(busiestWindow([2, 3], 5), 'a timeline shorter than a window is one span').toBe(5);
  });

  it('gives the defaults the lesson’s boundary burst: 10, 5 and 6 admitted', () => {
    // Limit 5 per 5 s; b = 5, r = 1. The bucket admits 5 at 4 s and the one token refilled by 5 s.
    const result = simulateRateLimits({ ...DEFAULT_INPUTS, requestsPerSlot: presetPattern('boundary', 5, 5) });

    expect(result.requests).toBe(10);
    expect([result.fixed.admitted, result.sliding.admitted, result.bucket.admitted]).toEqual([10, 5, 6]);
    expect([result.fixed.busiestWindowAdmitted, result.sliding.busiestWindowAdmitted]).toEqual([10, 5]);
    expect(result.bucket.rejected).toBe(4);
  });

  it('runs the counter instead of the log when asked', () => {
    // One a second, limit 5 per 5 s: the counter's first 12 s are worked out above (10 of 12 admitted).
    const requestsPerSlot = presetPattern('steady', 5, 5, 12);

    const log = simulateRateLimits({ ...DEFAULT_INPUTS, requestsPerSlot, sliding: 'log' });
    const counter = simulateRateLimits({ ...DEFAULT_INPUTS, requestsPerSlot, sliding: 'counter' });

    expect(log.sliding.admitted).toBe(12); // at 1 a second the log never holds more than 5
    expect(counter.sliding.admitted).toBe(10);
  });

  it('fills the presets within one timeline and one digit per second', () => {
    expect(presetPattern('boundary', 9, 10, 10), 'a boundary past the end keeps only what fits').toEqual([
      0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
    ]);
    expect(presetPattern('bursts', 5, 5, 9)).toEqual([4, 0, 0, 0, 4, 0, 0, 0, 4]);
    expect(presetPattern('steady', 5, 5, 3)).toEqual([1, 1, 1]);
  });
});

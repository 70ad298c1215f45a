import { describe, expect, it } from 'vitest';
import {
  earlyRefreshProbability,
  formatAmount,
  formatDuration,
  formatProbability,
  STAMPEDE_CONTROLS,
  STAMPEDE_DEFAULTS,
  type StampedeInputs,
  stampede,
  stampedeTable,
  xfetchExpectation,
  xfetchNotes,
} from '../../src/site/simulators/stampede.ts';
import { MAX_TICKS, timeline, timelineSvg } from '../../src/site/simulators/stampede-timeline.ts';

const E = Math.E;

/** mulberry32, seeded: the Monte Carlo below must give the same numbers on every run. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * XFetch played out read by read: Poisson reads, the rule `−delta·beta·ln(rand) ≥ time left`, every
 * read after expiry loading, until the first load lands. Independent of the closed form it checks.
 */
function simulateXFetch({ readsPerSecond, loadTimeMs, beta }: StampedeInputs, runs: number, seed: number) {
  const random = generator(seed);
  const rate = readsPerSecond / 1000;
  let early = 0;
  let misses = 0;
  for (let run = 0; run < runs; run++) {
    let leftMs = loadTimeMs * beta * 40;
    let firstMs: number | undefined;
    for (;;) {
      leftMs -= -Math.log(1 - random()) / rate;
      if (firstMs !== undefined && leftMs <= firstMs - loadTimeMs) break;
      const loads = leftMs <= 0 || -loadTimeMs * beta * Math.log(1 - random()) >= leftMs;
      if (!loads) continue;
      if (leftMs > 0) early++;
      else misses++;
      firstMs ??= leftMs;
    }
  }
  return { early: early / runs, misses: misses / runs };
}

const at = (changes: Partial<StampedeInputs>): StampedeInputs => ({ ...STAMPEDE_DEFAULTS, ...changes });

describe('the stampede simulator model', () => {
  it('starts from the lesson example: 2,000 reads a second, a 250 ms load, beta 1', () => {
    expect(STAMPEDE_DEFAULTS).toEqual({ readsPerSecond: 2_000, loadTimeMs: 250, beta: 1 });
    for (const control of STAMPEDE_CONTROLS) expect(control.values).toContain(control.defaultValue);
  });

  it('counts one load plus one per read during the load with no lock, and one with a lock', () => {
    const result = stampede(STAMPEDE_DEFAULTS);

    // 2,000/s × 0.25 s = 500 reads during the load, plus the read that started it.
    expect(result.readsDuringLoad).toBe(500);
    expect(result.noLock).toEqual({ loads: 501, misses: 501 });
    expect(result.lock).toEqual({ loads: 1, misses: 501 });
  });

  it('gives the per-read early-refresh chance of the lesson’s examples', () => {
    // delta 200 ms, beta 1: 1 s before expiry exp(−5) ≈ 0.67%; 200 ms before, exp(−1) ≈ 37%.
    expect(earlyRefreshProbability(1000, 200, 1)).toBeCloseTo(0.006738, 6);
    expect(earlyRefreshProbability(200, 200, 1)).toBeCloseTo(0.367879, 6);
    expect(earlyRefreshProbability(0, 200, 1), 'at expiry the key is gone').toBe(1);
    expect(earlyRefreshProbability(-5, 200, 1)).toBe(1);
    expect(earlyRefreshProbability(10, 0, 1), 'a free load is never started early').toBe(0);
  });

  it('settles near e^(1/beta) recomputations for a busy key, with almost no misses', () => {
    const busy = xfetchExpectation(STAMPEDE_DEFAULTS);

    // L = 2,000 × 0.25 × 1 = 500 and c = 500/e ≈ 184: 1 − e^(−184) is 1 in doubles, so early = e.
    expect(busy.earlyLoads).toBeCloseTo(E, 9);
    expect(busy.missLoads).toBeLessThan(1e-12);
    expect(busy.loads).toBeCloseTo(E, 9);
    expect(busy.startsBeforeExpiryProbability).toBe(1);
    // Median start: 250 × ln(500 / ln 2) = 250 × 6.58110 ≈ 1,645.3 ms before expiry.
    expect(busy.medianLeadMs).toBeCloseTo(1645.27, 1);

    // beta 2: e^(1/2) ≈ 1.6487; beta 0.5: e^2 ≈ 7.3891 (L = 1,000 and 250, both large).
    expect(xfetchExpectation(at({ beta: 2 })).loads).toBeCloseTo(1.648721, 5);
    expect(xfetchExpectation(at({ beta: 0.5 })).loads).toBeCloseTo(7.389056, 5);
  });

  it('matches the closed form worked by hand at L = 1', () => {
    // 4 reads/s × 0.25 s × 1 = L = 1, c = 1/e = 0.367879.
    const result = xfetchExpectation(at({ readsPerSecond: 4 }));

    expect(result.startsBeforeExpiryProbability).toBeCloseTo(1 - 1 / E, 6); // 0.632121
    expect(result.noMissProbability).toBeCloseTo(0.307799, 6); // 1 − e^(−0.367879)
    expect(result.earlyLoads).toBeCloseTo(0.836685, 6); // e × 0.307799
    // e^(−1) + ∫₀¹ exp(−e^(−u)) du, and that integral is E1(1/e) − E1(1). By the series
    // E1(x) = −γ − ln x + x − x²/4 + x³/18 − x⁴/96 + …: E1(0.367879) = 0.759415; E1(1) = 0.219384.
    // So 0.367879 + 0.540031 = 0.907910.
    expect(result.missLoads).toBeCloseTo(0.90791, 5);
    expect(result.loads).toBeCloseTo(1.744595, 5);
    // 250 × ln(1 / ln 2) = 250 × 0.366513 = 91.63 ms.
    expect(result.medianLeadMs).toBeCloseTo(91.63, 2);
  });

  it('agrees with a read-by-read simulation of the same rule', () => {
    for (const inputs of [
      { readsPerSecond: 10, loadTimeMs: 200, beta: 1 },
      { readsPerSecond: 20, loadTimeMs: 200, beta: 0.5 },
      { readsPerSecond: 50, loadTimeMs: 100, beta: 2 },
    ]) {
      const model = xfetchExpectation(inputs);
      const simulated = simulateXFetch(inputs, 20_000, 17);

      // 20,000 runs keep the standard error near 0.5% of these means; allow 3%.
      expect(simulated.early / model.earlyLoads, `early refreshes for ${JSON.stringify(inputs)}`).toBeCloseTo(1, 1);
      expect(Math.abs(simulated.early / model.earlyLoads - 1)).toBeLessThan(0.03);
      expect(Math.abs(simulated.misses - model.missLoads)).toBeLessThan(0.03 * Math.max(1, model.missLoads));
    }
  });

  it('falls back to one load per expiry for a key that is rarely read or free to load', () => {
    // L = 2 × 0.25 = 0.5, below ln 2: most expiries get no early refresh, so no median start.
    expect(xfetchExpectation(at({ readsPerSecond: 2 })).medianLeadMs).toBeNull();
    // L = 1 × 0.01 = 0.01: almost surely one load, taken by the first read after expiry.
    const rare = xfetchExpectation(at({ readsPerSecond: 1, loadTimeMs: 10 }));
    expect(rare.loads).toBeCloseTo(1, 1);
    expect(rare.missLoads).toBeGreaterThan(0.98);

    // A 0 ms load: nobody refreshes early and the miss costs one load in every strategy.
    const free = stampede(at({ loadTimeMs: 0 }));
    expect(free.noLock.loads).toBe(1);
    expect(free.lock.loads).toBe(1);
    expect(free.xfetch).toMatchObject({ loads: 1, earlyLoads: 0, missLoads: 1, noMissProbability: 0 });
  });

  it('loads nothing when nobody reads the key', () => {
    const idle = stampede(at({ readsPerSecond: 0 }));

    expect(idle.noLock).toEqual({ loads: 0, misses: 0 });
    expect(idle.lock).toEqual({ loads: 0, misses: 0 });
    expect(idle.xfetch.loads).toBe(0);
  });

  it('formats the table and notes the page shows', () => {
    const result = stampede(STAMPEDE_DEFAULTS);

    expect(stampedeTable(result).map((row) => [row.label, row.loads, row.misses])).toEqual([
      ['No lock', '501', '501'],
      ['Refill lock', '1', '501'],
      ['XFetch', '2.72', 'under 0.001'],
    ]);
    expect(xfetchNotes(result)).toEqual([
      'Early refreshes per expiry: 2.72; loads after a miss: under 0.001.',
      'Chance an early refresh starts before expiry: 100.0%.',
      'Chance it finishes in time, so no read misses: 100.0%.',
      'Median start of the first early refresh: 1.65 s before expiry.',
    ]);
    expect(formatAmount(5_001)).toBe('5,001');
    expect(formatAmount(0.0015445)).toBe('0.00154');
    expect(formatAmount(0)).toBe('0');
    expect(formatProbability(0.9995)).toBe('over 99.9%');
    expect(formatProbability(0.0004)).toBe('under 0.1%');
    expect(formatProbability(0.307799)).toBe('30.8%');
    expect(formatDuration(250)).toBe('250 ms');
    expect(formatDuration(1645.27)).toBe('1.65 s');
  });
});

describe('the stampede timeline', () => {
  it('draws the default expiry with 72 reads a tick and seven loading ticks without a lock', () => {
    const data = timeline(STAMPEDE_DEFAULTS);

    // Before expiry: max(3 × 250, 1,645.3 + 125, 375) = 1,770.3 ms; after: 0.25 + 375 ms.
    expect(data.startMs).toBeCloseTo(-1770.27, 1);
    expect(data.endMs).toBeCloseTo(375.25, 2);
    // 2,145.5 ms at 2 reads/ms is 4,291 reads; ceil(4,291 / 60) = 72 a tick, 36 ms apart.
    expect(data.readsPerTick).toBe(72);
    const [noLock, lock, xfetch] = data.lanes;
    // Ticks at 0.25 + 36k ms; those before 250.25 ms, k = 0…6, fall in the load window.
    expect(noLock.reads.filter((read) => read.kind === 'miss-load')).toHaveLength(7);
    expect(lock.reads.filter((read) => read.kind === 'miss-load')).toHaveLength(1);
    expect(lock.reads.filter((read) => read.kind === 'wait')).toHaveLength(6);
    // The median early refresh lands 1,395 ms before expiry: one early load, no miss.
    expect(xfetch.reads.filter((read) => read.kind === 'early-load')).toHaveLength(1);
    expect(xfetch.reads.filter((read) => read.kind === 'miss-load')).toHaveLength(0);
    expect(noLock.reads.length).toBeLessThanOrEqual(MAX_TICKS + 1);
  });

  it('shows misses on the XFetch lane when the median refresh lands after expiry', () => {
    // 4 reads/s, 250 ms: the median start is 91.6 ms before expiry, so it lands 158 ms after it.
    const data = timeline(at({ readsPerSecond: 4 }));

    expect(data.readsPerTick).toBe(1);
    expect(data.lanes[2].load.endMs).toBeCloseTo(158.37, 1);
    // The one read after expiry in view, at 125 ms, is before 158 ms: it misses.
    expect(data.lanes[2].reads.filter((read) => read.kind === 'miss-load').map((read) => read.atMs)).toEqual([125]);
  });

  it('labels its SVG with a title and a description that names the numbers', () => {
    const svg = timelineSvg(STAMPEDE_DEFAULTS, 'x');

    expect(svg).toMatch(/^<svg role="img" aria-labelledby="x-title x-desc"/);
    expect(svg).toContain('<title id="x-title">');
    expect(svg).toMatch(
      /<desc id="x-desc">One expiry of a key that gets 2,000 reads a second, with a 250 ms load\. Each tick is 72 reads\./,
    );
    expect(svg).toContain('starts 1.65 s before expiry and lands before it');
  });
});

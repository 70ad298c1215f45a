/**
 * The stampede simulator's model (lesson: content/lessons/stampedes-and-hot-keys.mdx, "Why a
 * stampede happens" and "Probabilistic early refresh"). Pure functions, no DOM; checked by hand in
 * test/self/simulator-stampede.test.ts.
 *
 * Assumptions, the same ones the lesson states next to the simulator: reads of the key arrive as a
 * Poisson stream at `readsPerSecond`; every load takes exactly `loadTimeMs` (so XFetch's stored
 * delta is exact); the value was written long before the expiry we look at; nothing else
 * coordinates the callers unless the strategy says so.
 */

export interface StampedeInputs {
  readsPerSecond: number;
  /** How long one recomputation takes: the load window, and XFetch's delta. */
  loadTimeMs: number;
  /** XFetch's beta (Vattani et al., VLDB 2015): above 1 refreshes earlier, below 1 later. */
  beta: number;
}

export interface XFetchResult {
  /** Expected recomputations per expiry, early and late together. */
  loads: number;
  /** Of those, started before expiry, while readers still get the old value. */
  earlyLoads: number;
  /** Of those, started by reads that found the key gone (each such read loads). */
  missLoads: number;
  /** Chance that at least one read starts an early refresh before expiry. */
  startsBeforeExpiryProbability: number;
  /** Chance that the first early refresh finishes before expiry, so no read misses at all. */
  noMissProbability: number;
  /** Median head start of the first early refresh; null when most expiries get none. */
  medianLeadMs: number | null;
}

export interface StampedeResult {
  /** Reads expected during one load: the request rate times the load time. */
  readsDuringLoad: number;
  /** No coordination: the first read after expiry and every read during its load all miss and load. */
  noLock: { loads: number; misses: number };
  /** A refill lock: the same reads miss, one loads, the rest wait for it. */
  lock: { loads: number; misses: number };
  xfetch: XFetchResult;
}

/**
 * XFetch recomputes when `now − delta·beta·ln(rand) ≥ expiry`. With `t` left before expiry and
 * rand uniform on (0, 1], that is `rand ≤ exp(−t / (delta·beta))`; at or after expiry the key is
 * gone and every read recomputes.
 */
export function earlyRefreshProbability(timeToExpiryMs: number, loadTimeMs: number, beta: number): number {
  if (timeToExpiryMs <= 0) return 1;
  const scaleMs = loadTimeMs * beta;
  return scaleMs > 0 ? Math.exp(-timeToExpiryMs / scaleMs) : 0;
}

/** ∫₀^upper exp(−a·e^(−u)) du by Simpson's rule; the integrand is smooth and bounded by 1. */
function integrateExpOfScaledDecay(a: number, upper: number): number {
  const steps = 256;
  const h = upper / steps;
  let sum = 0;
  for (let i = 0; i <= steps; i++) {
    const weight = i === 0 || i === steps ? 1 : i % 2 === 1 ? 4 : 2;
    sum += weight * Math.exp(-a * Math.exp(-i * h));
  }
  return (sum * h) / 3;
}

/**
 * Expected XFetch recomputations around one expiry. Measure time before expiry in units of
 * delta·beta (u = t / (delta·beta)), and let L = readsPerSecond·delta·beta and c = L·e^(−1/beta).
 *
 * Reads that would refresh early form a Poisson stream of intensity L·e^(−u) per unit of u, so the
 * accumulated intensity at the first one, x = L·e^(−u₁), is exponentially distributed with mean 1
 * (cut off at L: with probability e^(−L) nobody refreshes early). That first recomputation lasts
 * delta, i.e. 1/beta units of u; every read in that window may start another one.
 *
 * - It starts at least delta before expiry when x ≤ c. Then the extra refreshes in its window add
 *   x·(e^(1/beta) − 1), and integrating over x with density e^(−x) gives early = e^(1/beta)·(1 − e^(−c)).
 * - Otherwise it ends after expiry, and the reads in between miss and load; so do the first read
 *   after expiry and those during its load when nobody refreshed early. Together that is
 *   missLoads = e^(−L) + L·∫₀^(1/beta) exp(−L·e^(−u)) du.
 *
 * As L grows the total tends to e^(1/beta) (about 2.72 at beta = 1), whatever the read rate; as
 * L goes to 0 it tends to 1. A Monte Carlo run of the same assumptions agrees to three digits.
 */
export function xfetchExpectation(inputs: StampedeInputs): XFetchResult {
  const { readsPerSecond, loadTimeMs, beta } = inputs;
  if (readsPerSecond <= 0) {
    return {
      loads: 0,
      earlyLoads: 0,
      missLoads: 0,
      startsBeforeExpiryProbability: 0,
      noMissProbability: 1,
      medianLeadMs: null,
    };
  }
  const windowUnits = 1 / beta;
  const intensity = readsPerSecond * (loadTimeMs / 1000) * beta;
  const inTime = intensity * Math.exp(-windowUnits);
  const earlyLoads = Math.exp(windowUnits) * -Math.expm1(-inTime);
  const missLoads = Math.exp(-intensity) + intensity * integrateExpOfScaledDecay(intensity, windowUnits);
  return {
    loads: earlyLoads + missLoads,
    earlyLoads,
    missLoads,
    startsBeforeExpiryProbability: -Math.expm1(-intensity),
    noMissProbability: -Math.expm1(-inTime),
    // Median of the first early refresh: the accumulated intensity reaches ln 2.
    medianLeadMs: intensity > Math.LN2 ? loadTimeMs * beta * Math.log(intensity / Math.LN2) : null,
  };
}

export function stampede(inputs: StampedeInputs): StampedeResult {
  const readsDuringLoad = inputs.readsPerSecond * (inputs.loadTimeMs / 1000);
  const misses = inputs.readsPerSecond > 0 ? 1 + readsDuringLoad : 0;
  return {
    readsDuringLoad,
    noLock: { loads: misses, misses },
    lock: { loads: misses > 0 ? 1 : 0, misses },
    xfetch: xfetchExpectation(inputs),
  };
}

export interface StampedeControl {
  name: keyof StampedeInputs;
  label: string;
  values: readonly number[];
  defaultValue: number;
  format: (value: number) => string;
}

export const STAMPEDE_CONTROLS: readonly StampedeControl[] = [
  {
    name: 'readsPerSecond',
    label: 'Reads of the key',
    values: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000],
    defaultValue: 2_000,
    format: (value) => `${formatAmount(value)} per second`,
  },
  {
    name: 'loadTimeMs',
    label: 'Load time (delta)',
    values: [10, 20, 50, 100, 200, 250, 500, 1_000, 2_000, 5_000],
    defaultValue: 250,
    format: (value) => formatDuration(value),
  },
  {
    name: 'beta',
    label: 'XFetch beta',
    values: [0.25, 0.5, 0.75, 1, 1.5, 2, 3],
    defaultValue: 1,
    format: (value) => String(value),
  },
];

export const STAMPEDE_DEFAULTS = Object.fromEntries(
  STAMPEDE_CONTROLS.map((control) => [control.name, control.defaultValue]),
) as unknown as StampedeInputs;

const grouped = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const significant = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 });
const oneDecimal = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

/** Whole numbers from 100 up ("501", "5,001"), three significant digits below ("2.72", "0.00154"). */
export function formatAmount(value: number): string {
  if (value > 0 && value < 0.001) return 'under 0.001';
  return value >= 100 ? grouped.format(value) : significant.format(value);
}

export function formatProbability(probability: number): string {
  if (probability > 0.999 && probability < 1) return 'over 99.9%';
  if (probability > 0 && probability < 0.001) return 'under 0.1%';
  return `${oneDecimal.format(probability * 100)}%`;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${significant.format(ms)} ms` : `${significant.format(ms / 1000)} s`;
}

export interface StampedeRow {
  label: string;
  loads: string;
  misses: string;
}

/** The result table as text, shared by the build-time fallback and the live island. */
export function stampedeTable(result: StampedeResult): StampedeRow[] {
  return [
    { label: 'No lock', loads: formatAmount(result.noLock.loads), misses: formatAmount(result.noLock.misses) },
    { label: 'Refill lock', loads: formatAmount(result.lock.loads), misses: formatAmount(result.lock.misses) },
    { label: 'XFetch', loads: formatAmount(result.xfetch.loads), misses: formatAmount(result.xfetch.missLoads) },
  ];
}

/** The XFetch details under the table, one line each. */
export function xfetchNotes(result: StampedeResult): string[] {
  const { xfetch } = result;
  return [
    `Early refreshes per expiry: ${formatAmount(xfetch.earlyLoads)}; loads after a miss: ${formatAmount(xfetch.missLoads)}.`,
    `Chance an early refresh starts before expiry: ${formatProbability(xfetch.startsBeforeExpiryProbability)}.`,
    `Chance it finishes in time, so no read misses: ${formatProbability(xfetch.noMissProbability)}.`,
    xfetch.medianLeadMs === null
      ? 'Most expiries get no early refresh at this read rate.'
      : `Median start of the first early refresh: ${formatDuration(xfetch.medianLeadMs)} before expiry.`,
  ];
}

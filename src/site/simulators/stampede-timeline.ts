/**
 * The stampede simulator's timeline of one expiry: reads as ticks on three lanes (no lock, refill
 * lock, XFetch), the misses, and the load window. `timeline` is the geometry-free data (unit-tested
 * in test/self/simulator-stampede.test.ts); `timelineSvg` draws it as a string, so the build-time
 * fallback and the live island share one drawing.
 */
import {
  earlyRefreshProbability,
  formatAmount,
  formatDuration,
  type StampedeInputs,
  xfetchExpectation,
} from './stampede.ts';

/** Enough ticks to read as a stream at 328 px wide, few enough to stay apart. */
export const MAX_TICKS = 60;

export type ReadKind = 'hit' | 'miss-load' | 'wait' | 'early-load';

export interface Lane {
  label: string;
  /** Each drawn read and what it does on this lane. */
  reads: { atMs: number; kind: ReadKind }[];
  /** When the (first) load runs. */
  load: { startMs: number; endMs: number };
}

export interface Timeline {
  /** Time relative to expiry: negative is before it. */
  startMs: number;
  endMs: number;
  /** One drawn tick stands for this many reads. */
  readsPerTick: number;
  lanes: [Lane, Lane, Lane];
}

/**
 * Reads are drawn evenly spaced, half a gap either side of expiry, so the first read after expiry
 * is the one that finds the key gone. The XFetch lane shows the median case: its first early
 * refresh starts at the median head start from xfetchExpectation.
 */
export function timeline(inputs: StampedeInputs): Timeline {
  const { readsPerSecond, loadTimeMs, beta } = inputs;
  const gapMs = readsPerSecond > 0 ? 1000 / readsPerSecond : Number.POSITIVE_INFINITY;
  const firstMissMs = gapMs / 2;
  const medianLeadMs = xfetchExpectation(inputs).medianLeadMs;
  const startMs = -Math.max(3 * loadTimeMs * beta, (medianLeadMs ?? 0) + loadTimeMs / 2, loadTimeMs * 1.5, 1);
  const endMs = Number.isFinite(firstMissMs) ? firstMissMs + loadTimeMs * 1.5 : loadTimeMs * 1.5;

  const readsInView = Number.isFinite(gapMs) ? (endMs - startMs) / gapMs : 0;
  const readsPerTick = Math.max(1, Math.ceil(readsInView / MAX_TICKS));
  const times: number[] = [];
  if (Number.isFinite(gapMs)) {
    const stepMs = gapMs * readsPerTick;
    const first = Math.ceil((startMs - firstMissMs) / stepMs);
    for (let k = first; firstMissMs + k * stepMs <= endMs; k++) times.push(firstMissMs + k * stepMs);
  }

  const missLoad = { startMs: firstMissMs, endMs: firstMissMs + loadTimeMs };
  const inLoad = (atMs: number) => atMs >= missLoad.startMs && atMs < missLoad.endMs;
  const early = medianLeadMs === null ? missLoad : { startMs: -medianLeadMs, endMs: -medianLeadMs + loadTimeMs };

  return {
    startMs,
    endMs,
    readsPerTick,
    lanes: [
      {
        label: 'No lock',
        reads: times.map((atMs) => ({ atMs, kind: inLoad(atMs) ? 'miss-load' : 'hit' })),
        load: missLoad,
      },
      {
        label: 'Refill lock',
        reads: times.map((atMs) => ({
          atMs,
          kind: atMs === missLoad.startMs ? 'miss-load' : inLoad(atMs) ? 'wait' : 'hit',
        })),
        load: missLoad,
      },
      {
        label: 'XFetch',
        reads: times.map((atMs) => {
          if (medianLeadMs === null) return { atMs, kind: inLoad(atMs) ? 'miss-load' : 'hit' };
          // Reads after expiry miss until the early refresh lands, if it lands late.
          if (atMs >= 0 && atMs < early.endMs) return { atMs, kind: 'miss-load' };
          return { atMs, kind: atMs === nearest(times, early.startMs) ? 'early-load' : 'hit' };
        }),
        load: early,
      },
    ],
  };
}

function nearest(times: number[], targetMs: number): number | undefined {
  let best: number | undefined;
  for (const t of times) if (best === undefined || Math.abs(t - targetMs) < Math.abs(best - targetMs)) best = t;
  return best;
}

const WIDTH = 480;
const LEFT = 8;
const RIGHT = 472;
const LANE_TOP = [30, 94, 158] as const;
const LANE_HEIGHT = 60;
const AXIS_Y = 226;
export const TIMELINE_HEIGHT = 262;

const TICK_HEIGHT: Record<ReadKind, number> = { hit: 10, wait: 18, 'miss-load': 30, 'early-load': 30 };

const fixed = (value: number) => Number(value.toFixed(1));

/** Text escaping for the only strings that come from numbers and labels we build ourselves. */
const escapeText = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function timelineDescription(inputs: StampedeInputs, data: Timeline = timeline(inputs)): string {
  const { readsPerSecond, loadTimeMs } = inputs;
  const lead = xfetchExpectation(inputs).medianLeadMs;
  return [
    `One expiry of a key that gets ${formatAmount(readsPerSecond)} ${readsPerSecond === 1 ? 'read' : 'reads'} a second, with a ${formatDuration(loadTimeMs)} load.`,
    `Each tick is ${data.readsPerTick === 1 ? 'one read' : `${data.readsPerTick} reads`}.`,
    'No lock: every read from expiry until the first load finishes misses and loads.',
    'Refill lock: the first read after expiry loads and the others in its window wait.',
    lead === null
      ? 'XFetch: at this rate most expiries get no early refresh, so it behaves like no lock.'
      : `XFetch: in the median case the first early refresh starts ${formatDuration(lead)} before expiry${
          lead >= loadTimeMs ? ' and lands before it, so no read misses' : ' and lands after it, so some reads miss'
        }.`,
  ].join(' ');
}

/** The SVG markup (inner and outer), labelled by a <title> and <desc> with the given ids. */
export function timelineSvg(inputs: StampedeInputs, idPrefix: string): string {
  const data = timeline(inputs);
  const span = data.endMs - data.startMs;
  const x = (atMs: number) => fixed(LEFT + ((atMs - data.startMs) / span) * (RIGHT - LEFT));
  const titleId = `${idPrefix}-title`;
  const descId = `${idPrefix}-desc`;
  const parts: string[] = [];
  parts.push(
    `<svg role="img" aria-labelledby="${titleId} ${descId}" viewBox="0 0 ${WIDTH} ${TIMELINE_HEIGHT}" width="100%" class="stampede-timeline" xmlns="http://www.w3.org/2000/svg">`,
    `<title id="${titleId}">Timeline of one expiry</title>`,
    `<desc id="${descId}">${escapeText(timelineDescription(inputs, data))}</desc>`,
  );

  data.lanes.forEach((lane, index) => {
    const top = LANE_TOP[index]!;
    const base = top + LANE_HEIGHT - 8;
    const loadX = x(lane.load.startMs);
    const loadWidth = fixed(Math.max(1, x(Math.min(lane.load.endMs, data.endMs)) - loadX));
    parts.push(
      `<rect class="load-window" x="${loadX}" y="${top + 16}" width="${loadWidth}" height="${LANE_HEIGHT - 22}" rx="2"/>`,
    );
    if (index === 2) {
      // The chance that one read refreshes early, rising to 1 at expiry.
      const points: string[] = [];
      for (let i = 0; i <= 48; i++) {
        const atMs = data.startMs + (i / 48) * -data.startMs;
        const p = earlyRefreshProbability(-atMs, inputs.loadTimeMs, inputs.beta);
        points.push(`${x(atMs)},${fixed(base - p * (LANE_HEIGHT - 24))}`);
      }
      parts.push(`<polyline class="chance" points="${points.join(' ')}"/>`);
    }
    parts.push(`<line class="lane" x1="${LEFT}" y1="${base}" x2="${RIGHT}" y2="${base}"/>`);
    for (const read of lane.reads) {
      const at = x(read.atMs);
      parts.push(
        `<line class="tick ${read.kind}" x1="${at}" y1="${base}" x2="${at}" y2="${base - TICK_HEIGHT[read.kind]}"/>`,
      );
    }
    parts.push(`<text class="label" x="${LEFT}" y="${top + 12}">${lane.label}</text>`);
  });

  const zero = x(0);
  parts.push(
    `<line class="expiry" x1="${zero}" y1="20" x2="${zero}" y2="${AXIS_Y}"/>`,
    `<text class="label" x="${zero}" y="14" text-anchor="middle">expiry</text>`,
    `<line class="lane" x1="${LEFT}" y1="${AXIS_Y}" x2="${RIGHT}" y2="${AXIS_Y}"/>`,
    `<text class="label" x="${LEFT}" y="${AXIS_Y + 18}">${formatDuration(-data.startMs)} before</text>`,
    `<text class="label" x="${RIGHT}" y="${AXIS_Y + 18}" text-anchor="end">${formatDuration(data.endMs)} after</text>`,
    `<text class="label" x="${LEFT}" y="${AXIS_Y + 34}">tick = ${
      data.readsPerTick === 1 ? '1 read' : `${data.readsPerTick} reads`
    }; tall = loads; box = load window</text>`,
    '</svg>',
  );
  return parts.join('');
}

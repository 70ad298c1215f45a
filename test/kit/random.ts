/**
 * Random test data from one seeded generator, so that no answer can be hard-coded and a failing
 * run can be repeated exactly: the runner picks a seed per run (or takes --seed N), and the
 * setup file reseeds before each test from that seed and the test's name, so a test draws the
 * same data whether it runs alone, in its suite or after another suite. Not for security.
 */
import { randomInt } from 'node:crypto';

let state = randomInt(2 ** 32);

/** A fresh seed for a run the caller did not seed. */
export const randomSeed = () => randomInt(1, 2 ** 31);

/** The seed of one test: the run's seed mixed with the test's name (FNV-1a). */
export function seedFor(runSeed: number, testName: string): number {
  let hash = 0x811c9dc5 ^ runSeed;
  for (let i = 0; i < testName.length; i++) hash = Math.imul(hash ^ testName.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

export function reseed(seed: number) {
  state = seed >>> 0;
}

/** mulberry32: small, fast and plenty random for test data. A float in [0, 1). */
function next(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
}

/** An integer from min to max, both included. */
export const randomInteger = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
export const randomId = (prefix = 'id') =>
  `${prefix}-${Array.from({ length: 8 }, () => '0123456789abcdef'[randomInteger(0, 15)]).join('')}`;

const WORDS = [
  'amber',
  'basalt',
  'cedar',
  'delta',
  'ember',
  'fjord',
  'garnet',
  'harbor',
  'iris',
  'jade',
  'kelp',
  'lumen',
  'maple',
  'nova',
  'onyx',
  'pine',
  'quartz',
  'rune',
  'sage',
  'tide',
];
export const randomWord = () => WORDS[randomInteger(0, WORDS.length - 1)]!;
export const randomText = (words = 4) => Array.from({ length: words }, randomWord).join(' ');

export function shuffle<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = randomInteger(0, i);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

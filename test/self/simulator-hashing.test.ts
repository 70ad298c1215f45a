import { describe, expect, it } from 'vitest';
import {
  buildRing,
  DEFAULT_INPUTS,
  expectedModuloMovedFraction,
  expectedRingMovedFraction,
  fmix32,
  fnv1a32,
  hash32,
  keyNames,
  moduloOwner,
  nodeNames,
  ringOwner,
  SAMPLE_SIZE,
  simulateHashing,
} from '../../src/site/simulators/hashing.ts';

const CIRCLE = 2 ** 32;
/** The shortest arc that holds every point: the circle minus its largest gap. */
function spanOf(points: number[]): number {
  const sorted = [...points].sort((a, b) => a - b);
  const gaps = sorted.map((point, i) => (i === 0 ? point + CIRCLE - sorted.at(-1)! : point - sorted[i - 1]!));
  return (CIRCLE - Math.max(...gaps)) / CIRCLE;
}

describe('the hashing simulator model', () => {
  it('computes FNV-1a as its published test vectors', () => {
    // From the FNV reference (isthe.com/chongo/tech/comp/fnv): the offset basis, "a" and "foobar".
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
    expect(fmix32(0), 'every step of the finaliser keeps 0 at 0').toBe(0);
    expect(hash32('a')).toBe(fmix32(0xe40c292c));
  });

  it('spreads a node’s virtual nodes round the circle, which FNV-1a alone does not', () => {
    // "A#0" … "A#9" differ only in the last byte, by less than 16, and FNV-1a's last step multiplies
    // that difference by its prime, about 2^24: all ten land within 16/256 of the circle.
    const labels = Array.from({ length: 10 }, (_, v) => `A#${v}`);

    expect(spanOf(labels.map(fnv1a32))).toBeLessThan(1 / 16);
    expect(spanOf(labels.map(hash32))).toBeGreaterThan(1 / 2);
  });

  it('gives a key to the first point at or after it, wrapping past the top', () => {
    const ring = { points: [100, 200, 300], owners: ['A', 'B', 'C'] };

    expect([0, 150, 200, 300, 301].map((point) => ringOwner(ring, point))).toEqual(['A', 'B', 'B', 'C', 'A']);
  });

  it('places by remainder under modulo', () => {
    // 7 mod 3 = 1 → B; 9 mod 3 = 0 → A.
    expect([moduloOwner(['A', 'B', 'C'], 7), moduloOwner(['A', 'B', 'C'], 9)]).toEqual(['B', 'A']);
  });

  it('states the uniform-hash fractions the lesson gives', () => {
    // Modulo keeps min(N, M) residues of every lcm(N, M): 10 → 11 keeps 10 of 110, so 10/11 move;
    // 4 → 3 keeps 3 of 12, so 3/4 move; 2 → 4 keeps 2 of 4 (h mod 2 = h mod 4 only for 0 and 1).
    expect(expectedModuloMovedFraction(10, 11)).toBeCloseTo(10 / 11, 12);
    expect(expectedModuloMovedFraction(4, 3)).toBeCloseTo(3 / 4, 12);
    expect(expectedModuloMovedFraction(2, 4)).toBeCloseTo(1 / 2, 12);
    expect(expectedModuloMovedFraction(2, 1)).toBeCloseTo(1 / 2, 12);
    expect(expectedModuloMovedFraction(3, 3)).toBe(0);
    // The ring: the changed node's share of the larger cluster, 1/(N + 1) added, 1/N removed.
    expect(expectedRingMovedFraction(8, 9)).toBeCloseTo(1 / 9, 12);
    expect(expectedRingMovedFraction(4, 3)).toBeCloseTo(1 / 4, 12);
    expect(expectedRingMovedFraction(5, 5)).toBe(0);
  });

  it('moves on the ring only keys that go to the added node', () => {
    const keys = keyNames(1000).map(hash32);
    const before = buildRing(nodeNames(5), 50);
    const after = buildRing(nodeNames(6), 50);

    const moved = keys.filter((key) => ringOwner(before, key) !== ringOwner(after, key));
    const result = simulateHashing({ nodeCount: 5, virtualNodes: 50, change: 'add', keyCount: 1000 });

    expect(moved.every((key) => ringOwner(after, key) === 'F')).toBe(true);
    expect(result.ring.moved).toBe(moved.length);
    expect(result.ring.moved, 'every key F owns came from another node').toBe(result.ring.keysPerNode[5]);
    expect(result.changedNode).toBe('F');
  });

  it('moves on the ring exactly the keys the removed node held', () => {
    const keys = keyNames(1000).map(hash32);
    const before = buildRing(nodeNames(5), 50);

    const held = keys.filter((key) => ringOwner(before, key) === 'E').length;
    const result = simulateHashing({ nodeCount: 5, virtualNodes: 50, change: 'remove', keyCount: 1000 });

    expect(result.ring.moved).toBe(held);
    expect(result.nodesAfter).toEqual(['A', 'B', 'C', 'D']);
    expect(result.ring.keysPerNode.reduce((sum, n) => sum + n, 0)).toBe(1000);
  });

  it('moves most keys under modulo, close to N/(N + 1)', () => {
    // 1,000 draws of a well-mixed hash: the share that moves is within a few points of 8/9 = 88.9%.
    const result = simulateHashing({ ...DEFAULT_INPUTS });

    expect(result.modulo.movedFraction).toBeGreaterThan(0.85);
    expect(result.modulo.movedFraction).toBeLessThan(0.93);
    expect(result.expectedModuloMovedFraction).toBeCloseTo(8 / 9, 12);
  });

  it('puts everything on the one node left when two become one', () => {
    // 2 → 1: both placements move exactly B's keys, and one node holds the mean.
    const result = simulateHashing({ nodeCount: 2, virtualNodes: 1, change: 'remove', keyCount: 1000 });

    expect(result.ring.keysPerNode).toEqual([1000]);
    expect(result.modulo.keysPerNode).toEqual([1000]);
    expect(result.ring.maxOverMean).toBe(1);
    expect(result.points.filter((point) => point.node === 'B')).toHaveLength(1);
  });

  it('samples the first keys with their positions and moves', () => {
    const result = simulateHashing({ ...DEFAULT_INPUTS });

    expect(result.sample).toHaveLength(SAMPLE_SIZE);
    expect(result.sample[0]!.position).toBeCloseTo(hash32('key:0') / CIRCLE, 12);
    expect(result.sample.every((key) => key.position >= 0 && key.position < 1)).toBe(true);
    expect(result.points).toHaveLength(9 * DEFAULT_INPUTS.virtualNodes);
  });

  it('gives the defaults the numbers the page shows without JavaScript', () => {
    // Pinned from this deterministic model: 8 nodes of 100 points, adding I, over 1,000 keys.
    const result = simulateHashing({ ...DEFAULT_INPUTS });

    expect([result.ring.moved, result.modulo.moved]).toEqual([111, 890]);
    expect(result.ring.maxOverMean).toBeCloseTo(1.4, 2);
  });
});

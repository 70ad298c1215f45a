/**
 * The hashing simulator's model: which keys move when a node joins or leaves, on a consistent-hash
 * ring with virtual nodes and under `hash(key) mod N`, as in the lesson "Scaling data".
 */

export type NodeChange = 'add' | 'remove';

export interface HashingInputs {
  /** Nodes before the change. */
  nodeCount: number;
  /** Points each node gets on the ring. */
  virtualNodes: number;
  /** Add one node, or remove the last one. */
  change: NodeChange;
  keyCount: number;
}

export interface Placement {
  /** Keys that changed node, as a fraction of all keys (0 to 1). */
  movedFraction: number;
  moved: number;
  /** Keys per node after the change, in node order. */
  keysPerNode: number[];
  /** The busiest node's keys over the mean: 1 is a perfect spread. */
  maxOverMean: number;
}

export interface SampleKey {
  key: string;
  /** The key's position on the ring, as a fraction of the circle (0 to 1, clockwise from the top). */
  position: number;
  movedOnRing: boolean;
  movedByModulo: boolean;
}

export interface HashingResult {
  nodesBefore: string[];
  nodesAfter: string[];
  ring: Placement;
  modulo: Placement;
  /** What a uniform hash moves on average: the lesson's 1/(N+1) and N/(N+1) for an added node. */
  expectedRingMovedFraction: number;
  expectedModuloMovedFraction: number;
  /** Ring points after the change (before, for a removed node), as fractions of the circle. */
  points: { position: number; node: string }[];
  /** The node that joined or left. */
  changedNode: string;
  sample: SampleKey[];
}

export const KEY_COUNT = 1000;
export const SAMPLE_SIZE = 40;
export const MAX_NODES = 10;
export const DEFAULT_INPUTS: HashingInputs = { nodeCount: 8, virtualNodes: 100, change: 'add', keyCount: KEY_COUNT };

const TWO_TO_32 = 2 ** 32;

/**
 * FNV-1a (32-bit) followed by MurmurHash3's fmix32 finaliser. FNV-1a alone mixes its last byte
 * poorly: "A#1" … "A#9" differ only there, and their hashes land about 1/256 of the circle apart,
 * so a node's virtual nodes would bunch into one arc. The finaliser spreads them. Any well-mixed
 * hash moves the same fractions; the lesson's ring uses MD5, which browsers do not provide.
 */
export const hash32 = (text: string) => fmix32(fnv1a32(text));

export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

export function fmix32(input: number): number {
  let h = input >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Node names A, B, C, …: `count` of them (at most 26). */
export const nodeNames = (count: number) => Array.from({ length: count }, (_, i) => String.fromCharCode(65 + i));

export const keyNames = (count: number) => Array.from({ length: count }, (_, i) => `key:${i}`);

export interface Ring {
  /** Sorted ascending; points[i] belongs to owners[i]. */
  points: number[];
  owners: string[];
}

export function buildRing(nodes: readonly string[], virtualNodes: number): Ring {
  const entries = nodes.flatMap((node) =>
    Array.from({ length: virtualNodes }, (_, v) => ({ point: hash32(`${node}#${v}`), node })),
  );
  // Ties (two points on the same value) go to the lower node name, so the order never depends on insertion.
  entries.sort((a, b) => a.point - b.point || (a.node < b.node ? -1 : 1));
  return { points: entries.map((e) => e.point), owners: entries.map((e) => e.node) };
}

/** The owner of `point`: the first ring point at or after it, wrapping past the top to the first. */
export function ringOwner(ring: Ring, point: number): string {
  let lo = 0;
  let hi = ring.points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ring.points[mid]! < point) lo = mid + 1;
    else hi = mid;
  }
  return ring.owners[lo % ring.owners.length]!;
}

export const moduloOwner = (nodes: readonly string[], point: number) => nodes[point % nodes.length]!;

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * The fraction `hash mod before` ≠ `hash mod after` for a uniform hash. A hash keeps its node only
 * when both remainders equal the same r < min(before, after), which by the Chinese remainder
 * theorem is min(before, after) residues out of every lcm(before, after): for N → N + 1 that is
 * N of N(N + 1), so 1/(N + 1) stay and N/(N + 1) move.
 */
export function expectedModuloMovedFraction(before: number, after: number): number {
  if (before === after) return 0;
  const lcm = (before * after) / gcd(before, after);
  return 1 - Math.min(before, after) / lcm;
}

/**
 * With even arcs, the joining node takes its share 1/(N + 1); a leaving node hands its share 1/N
 * to the others. Either way: the changed node's share of the larger cluster.
 */
export const expectedRingMovedFraction = (before: number, after: number) =>
  before === after ? 0 : 1 / Math.max(before, after);

function placement(beforeOwners: string[], afterOwners: string[], nodesAfter: string[]): Placement {
  const moved = afterOwners.filter((owner, i) => owner !== beforeOwners[i]).length;
  const counts = new Map(nodesAfter.map((node) => [node, 0]));
  for (const owner of afterOwners) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  const keysPerNode = nodesAfter.map((node) => counts.get(node)!);
  const mean = afterOwners.length / nodesAfter.length;
  return {
    movedFraction: afterOwners.length === 0 ? 0 : moved / afterOwners.length,
    moved,
    keysPerNode,
    maxOverMean: mean === 0 ? 0 : Math.max(...keysPerNode) / mean,
  };
}

export function simulateHashing(inputs: HashingInputs): HashingResult {
  const after = inputs.change === 'add' ? inputs.nodeCount + 1 : Math.max(1, inputs.nodeCount - 1);
  const nodesBefore = nodeNames(inputs.nodeCount);
  const nodesAfter = nodeNames(after);
  const changedNode = inputs.change === 'add' ? nodesAfter.at(-1)! : nodesBefore.at(-1)!;
  const ringBefore = buildRing(nodesBefore, inputs.virtualNodes);
  const ringAfter = buildRing(nodesAfter, inputs.virtualNodes);
  const keys = keyNames(inputs.keyCount);
  const hashes = keys.map(hash32);

  const ringOwnersBefore = hashes.map((h) => ringOwner(ringBefore, h));
  const ringOwnersAfter = hashes.map((h) => ringOwner(ringAfter, h));
  const moduloBefore = hashes.map((h) => moduloOwner(nodesBefore, h));
  const moduloAfter = hashes.map((h) => moduloOwner(nodesAfter, h));
  const shown = inputs.change === 'add' ? ringAfter : ringBefore;

  return {
    nodesBefore,
    nodesAfter,
    ring: placement(ringOwnersBefore, ringOwnersAfter, nodesAfter),
    modulo: placement(moduloBefore, moduloAfter, nodesAfter),
    expectedRingMovedFraction: expectedRingMovedFraction(inputs.nodeCount, after),
    expectedModuloMovedFraction: expectedModuloMovedFraction(inputs.nodeCount, after),
    points: shown.points.map((point, i) => ({ position: point / TWO_TO_32, node: shown.owners[i]! })),
    changedNode,
    sample: keys.slice(0, SAMPLE_SIZE).map((key, i) => ({
      key,
      position: hashes[i]! / TWO_TO_32,
      movedOnRing: ringOwnersBefore[i] !== ringOwnersAfter[i],
      movedByModulo: moduloBefore[i] !== moduloAfter[i],
    })),
  };
}

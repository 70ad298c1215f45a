/**
 * The ring figure and the words of the hashing simulator, shared by its build-time render and its
 * script, so the page without JavaScript shows exactly the first frame the script draws.
 */
import type { HashingInputs, HashingResult } from '../../site/simulators/hashing.ts';

export const RING = { width: 320, height: 300, cx: 160, cy: 150, radius: 100 } as const;
const OUTER_DOTS = RING.radius + 18;
const INNER_DOTS = RING.radius - 18;

const count = (n: number) => n.toLocaleString('en-US');
export const percent = (fraction: number) => `${(fraction * 100).toFixed(1)}%`;
const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** A fraction in lowest terms, "8/9". */
export function ratio(numerator: number, denominator: number): string {
  const d = gcd(numerator, denominator) || 1;
  return `${numerator / d}/${denominator / d}`;
}

const nodeRange = (nodes: readonly string[]) => (nodes.length === 1 ? nodes[0]! : `${nodes[0]}–${nodes.at(-1)}`);

export const controlText = {
  nodeCount: (n: number) => `${n} (${nodeRange(Array.from({ length: n }, (_, i) => String.fromCharCode(65 + i)))})`,
  virtualNodes: (n: number) => `${n} per node`,
};

/** A point on the circle at `position` (0 to 1), clockwise from the top. */
function at(position: number, radius: number): [number, number] {
  const angle = 2 * Math.PI * position;
  return [RING.cx + radius * Math.sin(angle), RING.cy - radius * Math.cos(angle)];
}

const xy = ([x, y]: [number, number]) => `${x.toFixed(1)} ${y.toFixed(1)}`;

/**
 * The arcs the changed node owns, as one path: a key belongs to the first point at or after it,
 * so each point owns the arc back to the point before it. Neighbouring arcs of the node merge.
 */
export function changedArcsPath(result: HashingResult): string {
  const { points, changedNode } = result;
  const arcs: [number, number][] = [];
  for (const [i, point] of points.entries()) {
    if (point.node !== changedNode) continue;
    const start = i === 0 ? points.at(-1)!.position - 1 : points[i - 1]!.position;
    const last = arcs.at(-1);
    if (last && last[1] === start) last[1] = point.position;
    else arcs.push([start, point.position]);
  }
  return arcs
    .map(([start, end]) => {
      const large = end - start > 0.5 ? 1 : 0;
      return `M${xy(at(start, RING.radius))}A${RING.radius} ${RING.radius} 0 ${large} 1 ${xy(at(end, RING.radius))}`;
    })
    .join('');
}

/** The SVG's content below its title and desc. */
export function ringFigure(result: HashingResult): string {
  const dots = result.sample.map((key) => {
    const [ox, oy] = at(key.position, OUTER_DOTS);
    const [ix, iy] = at(key.position, INNER_DOTS);
    return (
      `<circle cx="${ox.toFixed(1)}" cy="${oy.toFixed(1)}" r="4" class="${key.movedOnRing ? 'moved' : 'stayed'}"/>` +
      `<circle cx="${ix.toFixed(1)}" cy="${iy.toFixed(1)}" r="4" class="${key.movedByModulo ? 'moved' : 'stayed'}"/>`
    );
  });
  return (
    `<circle cx="${RING.cx}" cy="${RING.cy}" r="${RING.radius}" class="ring"/>` +
    `<path d="${changedArcsPath(result)}" class="arcs"/>` +
    dots.join('') +
    `<text x="${RING.cx}" y="${RING.cy - 6}" class="label">outer dots: ring</text>` +
    `<text x="${RING.cx}" y="${RING.cy + 10}" class="label">inner dots: mod N</text>`
  );
}

const sampleMoved = (result: HashingResult, placement: 'movedOnRing' | 'movedByModulo') =>
  result.sample.filter((key) => key[placement]).length;

export function figureDescription(inputs: HashingInputs, result: HashingResult): string {
  const verb = inputs.change === 'add' ? 'owns after it joins' : 'owned before it left';
  return (
    `A hash ring; the marked arcs are the part of the circle node ${result.changedNode} ${verb}. ` +
    `Of ${result.sample.length} sample keys, drawn as dots at their positions, ${sampleMoved(result, 'movedOnRing')} ` +
    `moved on the ring (outer dots, filled) and ${sampleMoved(result, 'movedByModulo')} moved under hash mod N ` +
    '(inner dots, filled).'
  );
}

export function summaryText(inputs: HashingInputs, result: HashingResult): string {
  const keys = count(inputs.keyCount);
  if (inputs.change === 'add') {
    return (
      `Adding ${result.changedNode} to ${nodeRange(result.nodesBefore)}: on the ring, ${count(result.ring.moved)} of ` +
      `${keys} keys move, every one of them to ${result.changedNode}; under hash mod N, ${count(result.modulo.moved)} move.`
    );
  }
  return (
    `Removing ${result.changedNode} from ${nodeRange(result.nodesBefore)}: on the ring, ${count(result.ring.moved)} of ` +
    `${keys} keys move, only those ${result.changedNode} held; under hash mod N, ${count(result.modulo.moved)} move.`
  );
}

/** The rows of the results table: label, ring value, modulo value. */
export function resultRows(result: HashingResult): [string, string, string][] {
  const before = result.nodesBefore.length;
  const after = result.nodesAfter.length;
  const big = Math.max(before, after);
  const lcm = (before * after) / gcd(before, after);
  const moduloMoved = ratio(lcm - Math.min(before, after), lcm);
  return [
    [
      'Keys moved',
      `${count(result.ring.moved)} (${percent(result.ring.movedFraction)})`,
      `${count(result.modulo.moved)} (${percent(result.modulo.movedFraction)})`,
    ],
    [
      'A uniform hash moves',
      `${percent(result.expectedRingMovedFraction)} (1/${big})`,
      `${percent(result.expectedModuloMovedFraction)} (${moduloMoved})`,
    ],
    [
      'Busiest node ÷ mean, after',
      `${result.ring.maxOverMean.toFixed(2)}×`,
      `${result.modulo.maxOverMean.toFixed(2)}×`,
    ],
  ];
}

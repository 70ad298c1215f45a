/**
 * A unified diff of two texts, line by line (longest common subsequence), for `lab diff`: no git
 * or diff tool needed, so it works in a zip download and on Windows. Exercise files are a few
 * hundred lines, so the quadratic table is small.
 */
export function unifiedDiff(before: string, after: string, labels: [string, string], context = 3): string {
  const a = before.split('\n');
  const b = after.split('\n');
  const lcs: Uint16Array[] = Array.from({ length: a.length + 1 }, () => new Uint16Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--)
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  const ops: Array<{ kind: ' ' | '-' | '+'; line: string; ai: number; bi: number }> = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) ops.push({ kind: ' ', line: a[i]!, ai: i++, bi: j++ });
    // Removed lines before added ones, as diff and git print them.
    else if (i < a.length && (j >= b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!))
      ops.push({ kind: '-', line: a[i]!, ai: i++, bi: j });
    else ops.push({ kind: '+', line: b[j]!, ai: i, bi: j++ });
  }
  const out = [`--- ${labels[0]}`, `+++ ${labels[1]}`];
  for (let k = 0; k < ops.length; ) {
    if (ops[k]!.kind === ' ') {
      k++;
      continue;
    }
    // One hunk holds the changes closer than two contexts apart.
    let last = k;
    for (let m = k + 1; m < ops.length; m++) {
      if (ops[m]!.kind === ' ') continue;
      if (m - last - 1 > 2 * context) break;
      last = m;
    }
    const hunk = ops.slice(Math.max(0, k - context), Math.min(ops.length, last + 1 + context));
    const aCount = hunk.filter((op) => op.kind !== '+').length;
    const bCount = hunk.filter((op) => op.kind !== '-').length;
    out.push(
      `@@ -${hunk[0]!.ai + 1},${aCount} +${hunk[0]!.bi + 1},${bCount} @@`,
      ...hunk.map((op) => `${op.kind}${op.line}`),
    );
    k = Math.min(ops.length, last + 1 + context);
  }
  return out.length === 2 ? '' : `${out.join('\n')}\n`;
}

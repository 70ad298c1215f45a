/**
 * Our own mutation corpus (test/corpus/<slug>/): for each exercise, buggy variants with one
 * classic mistake each, and correct variants whose designs differ from the reference. The dev
 * check grades them all: every mutant must fail (core, unless it says `@level staff`) with a
 * failure that matches its `@caught-by` pattern, i.e. a message that names its mistake, and every
 * correct variant must pass, on the mock and on a real Redis when one is given.
 *
 * An entry is a `.patch` (a unified diff of the reference solution, so a mutant stays one mistake,
 * a variant one design change, and both follow the reference when it changes) or, for a design
 * that shares little with the reference, a whole `.ts` file. The grader type-checks either.
 * The doc block at the top of the patched or whole file says what it is:
 *   @mutant <the mistake and what it costs>   @caught-by <regex, case-insensitive>   [@level staff]
 *   [@known-survivor <why no test can see it yet>: reported in the score, not a failed check]
 *   @correct <how the design differs from the reference>
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { exercisePaths, ROOT } from '../course/paths.ts';
import { grade, type ExerciseVerdict } from '../lab/grade.ts';
import type { CheckResult } from './check.ts';

export const CORPUS_DIR = path.join(ROOT, 'test', 'corpus');

const HeaderSchema = z.union([
  z.object({
    kind: z.literal('mutant'),
    /** The mistake, in one sentence, with what it costs in production. */
    mutant: z.string().min(10),
    /** A case-insensitive regex that the failing tests' names and messages must match. */
    caughtBy: z.string().min(1),
    /** The level whose tests must catch it: core unless the mistake is a staff requirement. */
    level: z.enum(['core', 'staff']).default('core'),
    /** Why the suite cannot catch it yet: it is then counted as a survivor, not as a failure. */
    knownSurvivor: z.string().min(10).optional(),
  }),
  z.object({
    kind: z.literal('correct'),
    /** How this design differs from the reference. */
    correct: z.string().min(10),
  }),
]);

export type CorpusHeader = z.infer<typeof HeaderSchema>;

export interface CorpusEntry {
  slug: string;
  /** The file's name without extension: `set-on-write`. */
  name: string;
  file: string;
  header: CorpusHeader;
  /** The implementation to grade, with the patch applied. */
  source: string;
}

/** Reads the `@tag text` lines of the first doc block. */
export function parseHeader(source: string, file: string): CorpusHeader {
  const block = /^\s*\/\*\*([\s\S]*?)\*\//.exec(source)?.[1] ?? '';
  const tags: Record<string, string> = {};
  for (const match of block.matchAll(/@([a-z-]+)\s+([^\n]*(?:\n\s*\*\s+(?!@)[^\n]*)*)/g)) {
    tags[match[1]!] = match[2]!.replace(/\n\s*\*\s+/g, ' ').trim();
  }
  const raw =
    tags.mutant !== undefined
      ? {
          kind: 'mutant',
          mutant: tags.mutant,
          caughtBy: tags['caught-by'],
          ...(tags.level && { level: tags.level }),
          ...(tags['known-survivor'] && { knownSurvivor: tags['known-survivor'] }),
        }
      : { kind: 'correct', correct: tags.correct };
  const parsed = HeaderSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(
      `${path.relative(ROOT, file)}: its first doc block needs "@mutant <mistake>" with "@caught-by <regex>", or "@correct <design>" (${z.prettifyError(parsed.error)})`,
    );
  }
  return parsed.data;
}

/**
 * Applies a unified diff to `source`. Each hunk must match its context exactly, at its line or
 * anywhere below the previous hunk, so a stale patch fails loudly instead of mutating the wrong line.
 */
export function applyPatch(source: string, patch: string, file = 'patch'): string {
  const lines = source.split('\n');
  const out: string[] = [];
  let at = 0;
  const hunks = patch.split(/^(?=@@ )/m).filter((part) => part.startsWith('@@ '));
  if (!hunks.length) throw new Error(`${file}: no hunks (make it with diff -u reference mutant)`);
  for (const hunk of hunks) {
    const [head, ...body] = hunk.replace(/\n$/, '').split('\n');
    const start = Number(/^@@ -(\d+)/.exec(head!)?.[1] ?? NaN) - 1;
    const before = body.filter((l) => l.startsWith(' ') || l.startsWith('-')).map((l) => l.slice(1));
    const after = body.filter((l) => l.startsWith(' ') || l.startsWith('+')).map((l) => l.slice(1));
    const matches = (i: number) => before.every((line, k) => lines[i + k] === line);
    let found = Math.max(at, start) <= lines.length && matches(Math.max(at, start)) ? Math.max(at, start) : -1;
    for (let i = at; found < 0 && i <= lines.length - before.length; i++) if (matches(i)) found = i;
    if (found < 0)
      throw new Error(`${file}: hunk "${head}" no longer matches the reference solution; remake the patch`);
    out.push(...lines.slice(at, found), ...after);
    at = found + before.length;
  }
  out.push(...lines.slice(at));
  return out.join('\n');
}

export function loadCorpus(slugs: string[]): CorpusEntry[] {
  const entries: CorpusEntry[] = [];
  for (const slug of slugs) {
    const dir = path.join(CORPUS_DIR, slug);
    if (!fs.existsSync(dir)) continue;
    const reference = fs.readFileSync(exercisePaths(slug).solution, 'utf8');
    for (const base of fs.readdirSync(dir).sort()) {
      const file = path.join(dir, base);
      const text = fs.readFileSync(file, 'utf8');
      const source = base.endsWith('.patch') ? applyPatch(reference, text, path.relative(ROOT, file)) : text;
      entries.push({ slug, name: base.replace(/\.(patch|ts)$/, ''), file, header: parseHeader(source, file), source });
    }
  }
  return entries;
}

/** What a mutant's catching tests said: names and messages of the failing tests of its level. */
function failures(verdict: ExerciseVerdict, level: 'core' | 'staff') {
  return verdict.tests
    .filter((t) => t.status === 'fail' && t.level === level)
    .map((t) => `${t.name}\n${t.message ?? ''}`);
}

/**
 * Grades every entry, the i-th entry of every exercise side by side in one folder, so the
 * corpus takes as many runs as the largest exercise has entries, not one run per entry.
 */
async function gradeAll(
  entries: CorpusEntry[],
  redisUrl: string | undefined,
  seed: number,
): Promise<Map<CorpusEntry, ExerciseVerdict>> {
  const bySlug = new Map<string, CorpusEntry[]>();
  for (const entry of entries) bySlug.set(entry.slug, [...(bySlug.get(entry.slug) ?? []), entry]);
  const rounds = Math.max(0, ...[...bySlug.values()].map((list) => list.length));
  const verdicts = new Map<CorpusEntry, ExerciseVerdict>();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-corpus-'));
  try {
    for (let round = 0; round < rounds; round++) {
      const dir = path.join(root, String(round));
      const batch = [...bySlug.values()].flatMap((list) => (list[round] ? [list[round]!] : []));
      for (const entry of batch) {
        fs.mkdirSync(path.join(dir, entry.slug), { recursive: true });
        fs.writeFileSync(exercisePaths(entry.slug, dir).source, entry.source);
      }
      const graded = await grade({
        slugs: batch.map((e) => e.slug),
        implRoot: dir,
        seed,
        ...(redisUrl && { redisUrl }),
      });
      for (const entry of batch) verdicts.set(entry, graded.find((v) => v.slug === entry.slug)!);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  return verdicts;
}

export interface CorpusScore {
  results: CheckResult[];
  caught: number;
  mutants: number;
  passing: number;
  correct: number;
  /** Mutants the suites cannot catch yet, with why (their @known-survivor). */
  survivors: string[];
}

/**
 * The gate grades the corpus with one fixed seed, so its verdict cannot change from run to run;
 * `npm run check -- --seed N` tries others, which is how a seed-dependent gap in a suite shows.
 */
export const CORPUS_SEED = 1;

/** Grades the corpus of `slugs`: mutants on the mock, correct variants on the mock and on `redisUrl`. */
export async function checkCorpus(slugs: string[], redisUrl?: string, seed = CORPUS_SEED): Promise<CorpusScore> {
  const entries = loadCorpus(slugs);
  const results: CheckResult[] = [];
  const rel = (entry: CorpusEntry) => path.relative(ROOT, entry.file);
  const onMock = await gradeAll(entries, undefined, seed);
  let caught = 0;
  const survivors: string[] = [];
  for (const entry of entries.filter((e) => e.header.kind === 'mutant')) {
    const header = entry.header as Extract<CorpusHeader, { kind: 'mutant' }>;
    const verdict = onMock.get(entry)!;
    const said = failures(verdict, header.level);
    const named = said.some((text) => new RegExp(header.caughtBy, 'i').test(text));
    const ok = verdict.status !== 'pass' && said.length > 0 && named;
    if (ok) caught++;
    if (header.knownSurvivor && !ok) {
      survivors.push(`${rel(entry)}: ${header.knownSurvivor}`);
      continue;
    }
    const problem =
      verdict.status === 'pass' || !said.length
        ? `Survived: no ${header.level} test fails "${header.mutant}" Strengthen test/graded/${entry.slug}.test.ts (and its README) so this mistake fails.`
        : `Caught, but no failing ${header.level} test matches /${header.caughtBy}/i, so the learner is not told the mistake. It said:\n${said.map((s) => s.slice(0, 400)).join('\n')}`;
    results.push({ name: `corpus ${rel(entry)}: the mutant fails ${header.level}, naming its mistake`, ok, problem });
  }
  const correct = entries.filter((e) => e.header.kind === 'correct');
  const onRedis =
    redisUrl && correct.length ? await gradeAll(correct, redisUrl, seed) : new Map<CorpusEntry, ExerciseVerdict>();
  let passing = 0;
  for (const entry of correct) {
    const verdicts = [
      ['the mock', onMock.get(entry)!],
      ...(redisUrl ? [['a real Redis', onRedis.get(entry)!] as const] : []),
    ] as const;
    let all = true;
    for (const [where, verdict] of verdicts) {
      const failing = verdict.tests
        .filter((t) => t.status === 'fail')
        .map((t) => `  ✘ ${t.name}\n    ${t.message ?? ''}`);
      const ok = verdict.status === 'pass';
      all &&= ok;
      results.push({
        name: `corpus ${rel(entry)}: the correct variant passes on ${where}`,
        ok,
        problem: `A correct design is rejected (a suite bug, or the variant is not correct): ${[verdict.message, ...failing].filter(Boolean).join('\n')}`,
      });
    }
    if (all) passing++;
  }
  return { results, caught, mutants: entries.length - correct.length, passing, correct: correct.length, survivors };
}

export function corpusScore(score: CorpusScore): string {
  const pct = (a: number, b: number) => (b ? `${Math.round((100 * a) / b)}%` : 'n/a');
  const known = score.survivors.map((line) => `\n  known survivor ${line}`).join('');
  return `mutation corpus: ${score.caught}/${score.mutants} mutants caught with their mistake named (${pct(score.caught, score.mutants)}), ${score.passing}/${score.correct} correct variants pass${known}`;
}

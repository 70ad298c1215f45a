/**
 * Grades exercise folders: runs their suites in a test process (suite-runner.ts), type-checks
 * the learner's files beside it, and turns what was observed into verdicts (verdict.ts).
 */
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { exercisePaths } from '../course/paths.ts';
import { redisOptionsOf, SuiteHost, type RedisOptions, type SuiteRun } from './suite-runner.ts';
import { typeCheck } from './type-check.ts';
import { decideVerdict, type Evidence, type ExerciseVerdict } from './verdict.ts';

export type { ExerciseVerdict, TestVerdict } from './verdict.ts';

export interface GradeOptions extends RedisOptions {
  slugs: string[];
  /** Folder laid out like exercises/: <slug>/<slug>.ts. */
  implRoot: string;
  /** Wall-clock limit for one suite; a batch gets this per suite. */
  suiteTimeLimitMs?: number;
  /** Seed of the suites' test data (--seed); a fresh one when not given. */
  seed?: number | undefined;
}

/** A seed for a run the learner did not seed; printed with a failing verdict. */
export const newSeed = () => randomInt(1, 2 ** 31);

export const DEFAULT_SUITE_LIMIT_MS = 30_000;

/** Copies what a run observed of `slug` into its evidence. */
export function evidenceFrom(slug: string, run: SuiteRun, ownsUnhandled: boolean, limitMs: number): Evidence {
  const module = run.modules.get(slug);
  if (module) return { slug, module, ...(ownsUnhandled && run.unhandled.length && { unhandled: run.unhandled }) };
  const finished = run.finished.get(slug) ?? [];
  if (run.hang && (run.hang.slug ?? slug) === slug) return { slug, finished, hang: run.hang, limitMs };
  return { slug, finished, crash: run.crash ?? 'The test process stopped before this suite reported.' };
}

/**
 * Runs `slugs` together and, when one suite hangs or errors escape a shared run, the others
 * again so that one learner's bug cannot hide or break another exercise's verdict.
 */
async function runAll(host: SuiteHost, slugs: string[], limit: number, seed: number): Promise<Map<string, Evidence>> {
  const evidence = new Map<string, Evidence>();
  let pending = slugs;
  while (pending.length) {
    const run = await host.run(pending, { limitMs: limit * pending.length, seed });
    const alone = pending.length === 1;
    if (!alone && run.unhandled.length) {
      // Escaped errors belong to no suite in a shared run: grade each suite on its own.
      for (const slug of pending)
        evidence.set(slug, evidenceFrom(slug, await host.run([slug], { limitMs: limit, seed }), true, limit));
      break;
    }
    for (const slug of pending) if (run.modules.has(slug)) evidence.set(slug, evidenceFrom(slug, run, alone, limit));
    const unfinished = pending.filter((slug) => !run.modules.has(slug));
    if (!run.hang) {
      for (const slug of unfinished) evidence.set(slug, evidenceFrom(slug, run, alone, limit));
      break;
    }
    const culprit = run.hang.slug ?? (alone ? pending[0] : undefined);
    if (culprit) evidence.set(culprit, evidenceFrom(culprit, run, alone, limit));
    else {
      // The hang came before any test started (at import): find it by running each alone.
      for (const slug of unfinished)
        evidence.set(slug, evidenceFrom(slug, await host.run([slug], { limitMs: limit, seed }), true, limit));
      break;
    }
    pending = unfinished.filter((slug) => slug !== culprit);
  }
  return evidence;
}

/** Grades `slugs` from `implRoot`. Never throws for a learner's mistake: it becomes a verdict. */
export async function grade(options: GradeOptions): Promise<ExerciseVerdict[]> {
  const limit = options.suiteTimeLimitMs ?? DEFAULT_SUITE_LIMIT_MS;
  const seed = options.seed ?? newSeed();
  const implRoot = path.resolve(options.implRoot);
  const evidence = new Map<string, Evidence>();
  const runnable: string[] = [];
  for (const slug of options.slugs) {
    const source = exercisePaths(slug, implRoot).source;
    if (fs.existsSync(source)) runnable.push(slug);
    else evidence.set(slug, { slug, missingFile: path.relative(process.cwd(), source) || source });
  }

  if (runnable.length) {
    const host = new SuiteHost({ implRoot, ...redisOptionsOf(options) });
    // Vitest starts first; the type check (a fraction of a second) runs while it loads.
    const started = host.start();
    const types = typeCheck(runnable, implRoot);
    try {
      await started.catch(() => {}); // a failed start is reported by run() as a crash
      for (const [slug, found] of await runAll(host, runnable, limit, seed)) evidence.set(slug, found);
    } finally {
      host.stop();
    }
    const typeErrors = await types;
    for (const slug of runnable) {
      const errors = typeErrors.get(slug);
      if (errors) evidence.set(slug, { ...evidence.get(slug)!, typeErrors: errors });
    }
  }
  return options.slugs.map((slug) => ({ ...decideVerdict(evidence.get(slug)!), seed }));
}

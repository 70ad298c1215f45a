/**
 * Grades exercise folders by running their suites in a child Vitest process. Time limits are
 * enforced here, outside that process: a learner's loop that never yields (mock Redis replies
 * are microtasks) starves the timers inside the test worker, so only a parent can stop it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { exercisePaths, ROOT } from '../course/paths.ts';
import { TEST_LEVELS, type TestLevel } from '../course/exercise-schema.ts';
import type { ReportedModule } from './vitest-reporter.ts';
import { typeCheck } from './type-check.ts';

export interface TestVerdict {
  name: string;
  level: TestLevel;
  status: 'pass' | 'fail';
  message?: string;
}

/** Modelled on Exercism's test-runner results.json v3. */
export interface ExerciseVerdict {
  slug: string;
  /** pass: every test passed; fail: a test failed; error: the suite could not run at all. */
  status: 'pass' | 'fail' | 'error';
  /** Why the exercise errored, or problems outside the tests (type errors). */
  message?: string;
  tests: TestVerdict[];
}

export interface GradeOptions {
  slugs: string[];
  /** Folder laid out like exercises/: <slug>/<slug>.ts. */
  implRoot: string;
  redisUrl?: string;
  /** Wall-clock limit for one suite; the whole batch gets this per suite. */
  suiteTimeLimitMs?: number;
}

const VITEST = path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
const REPORTER = path.join(ROOT, 'src', 'lab', 'vitest-reporter.ts');
const DEFAULT_SUITE_LIMIT_MS = 30_000;

interface RunOutcome {
  modules: Map<string, ReportedModule>;
  unhandled: string[];
  timedOut: boolean;
  exitCode: number | null;
  stderr: string;
}

function runVitest(slugs: string[], options: GradeOptions, timeLimitMs: number): Promise<RunOutcome> {
  const suites = slugs.map((slug) => path.relative(ROOT, exercisePaths(slug).suite));
  const env: NodeJS.ProcessEnv = { ...process.env, LAB_IMPL_ROOT: options.implRoot, FORCE_COLOR: '0' };
  if (options.redisUrl) env.REDIS_URL = options.redisUrl;
  else delete env.REDIS_URL;
  const child = spawn(process.execPath, [VITEST, 'run', '--project', 'graded', '--reporter', REPORTER, ...suites], {
    cwd: ROOT,
    env,
    detached: true, // its own process group, so a kill reaches the test workers too
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const outcome: RunOutcome = { modules: new Map(), unhandled: [], timedOut: false, exitCode: null, stderr: '' };
  let buffer = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.startsWith('LAB_MODULE ')) {
        const module = JSON.parse(line.slice(11)) as ReportedModule;
        outcome.modules.set(path.basename(module.file, '.test.ts'), module);
      } else if (line.startsWith('LAB_RUN_END ')) {
        outcome.unhandled = (JSON.parse(line.slice(12)) as { unhandled: string[] }).unhandled;
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (outcome.stderr.length < 20_000) outcome.stderr += chunk;
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      outcome.timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeLimitMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      outcome.exitCode = code;
      resolve(outcome);
    });
  });
}

const levelOf = (name: string): TestLevel => TEST_LEVELS.find((level) => name.startsWith(`${level} >`)) ?? 'core';

function timeoutMessage(limitMs: number) {
  return (
    `The suite did not finish within ${limitMs / 1000} s and was stopped. Look for a loop that never ` +
    'awaits anything slower than a Redis reply (the mock Redis answers instantly, so such a loop never ' +
    'lets timers run), or a retry loop with no limit.'
  );
}

/** The verdict for one suite file's report (shared with watch mode). */
export function verdictFrom(slug: string, module: ReportedModule): ExerciseVerdict {
  const tests: TestVerdict[] = module.tests
    .filter((test) => test.status !== 'skip')
    .map((test) => ({
      name: test.name,
      level: levelOf(test.name),
      status: test.status === 'pass' ? 'pass' : 'fail',
      ...(test.message && { message: friendlier(test.message) }),
    }));
  if (module.errors.length > 0 || tests.length === 0) {
    return { slug, status: 'error', message: module.errors.map(friendlier).join('\n') || 'The suite found no tests.', tests };
  }
  return { slug, status: tests.every((test) => test.status === 'pass') ? 'pass' : 'fail', tests };
}

/** Rewrites Vitest's terse messages into ones that say what to look for. */
export function friendlier(message: string): string {
  const timedOut = /Test timed out in (\d+)ms/.exec(message);
  if (timedOut) {
    return `Timed out after ${Number(timedOut[1]) / 1000} s: a promise in your code never settled. Look for a missing await, a lock or lease never released, or a wait with no deadline.`;
  }
  if (/Failed to resolve import|Cannot find module|Failed to load url/.test(message) && /@impl|exercises|solutions/.test(message)) {
    return `The exercise file could not be loaded: ${message.split('\n')[0]}`;
  }
  return message.replace(/\u001b\[[0-9;]*m/g, '');
}

/** Grades `slugs` from `implRoot`. Never throws for a learner's mistake: it becomes a verdict. */
export async function grade(options: GradeOptions): Promise<ExerciseVerdict[]> {
  const limit = options.suiteTimeLimitMs ?? DEFAULT_SUITE_LIMIT_MS;
  const verdicts = new Map<string, ExerciseVerdict>();
  const runnable: string[] = [];
  for (const slug of options.slugs) {
    const source = exercisePaths(slug, options.implRoot).source;
    if (fs.existsSync(source)) runnable.push(slug);
    else verdicts.set(slug, { slug, status: 'error', message: `No file at ${path.relative(process.cwd(), source) || source}.`, tests: [] });
  }

  const [outcome, typeErrors] = await Promise.all([
    runnable.length ? runVitest(runnable, options, limit * Math.max(1, runnable.length)) : null,
    runnable.length ? typeCheck(runnable, options.implRoot) : new Map<string, string>(),
  ]);

  // Suites the batch did not finish (a hang), or unhandled errors no suite owns: run those
  // suites alone, so one learner's bug cannot hide or break the others' verdicts.
  const unfinished = runnable.length > 1 ? runnable.filter((slug) => !outcome?.modules.has(slug)) : [];
  const rerun = outcome && outcome.unhandled.length > 0 && runnable.length > 1 ? runnable : unfinished;
  const finalOutcomes = new Map<string, RunOutcome>();
  for (const slug of runnable) if (outcome) finalOutcomes.set(slug, outcome);
  for (const slug of rerun) finalOutcomes.set(slug, await runVitest([slug], options, limit));

  for (const slug of runnable) {
    const result = finalOutcomes.get(slug)!;
    const module = result.modules.get(slug);
    let verdict: ExerciseVerdict;
    if (module) verdict = verdictFrom(slug, module);
    else if (result.timedOut) verdict = { slug, status: 'error', message: timeoutMessage(limit), tests: [] };
    else verdict = { slug, status: 'error', message: `The test run crashed:\n${result.stderr.trim().split('\n').slice(-15).join('\n')}`, tests: [] };
    const ownsUnhandled = result !== outcome || runnable.length === 1;
    if (ownsUnhandled && result.unhandled.length > 0) {
      verdict.status = 'error';
      verdict.message = [verdict.message, `An error escaped your code without being awaited (an unhandled rejection). It would crash a Node process in production:\n${result.unhandled.map(friendlier).join('\n')}`].filter(Boolean).join('\n');
    }
    const typeError = typeErrors.get(slug);
    if (typeError) {
      if (verdict.status === 'pass') verdict.status = 'fail';
      verdict.message = [verdict.message, `Type errors:\n${typeError}`].filter(Boolean).join('\n');
    }
    verdicts.set(slug, verdict);
  }
  return options.slugs.map((slug) => verdicts.get(slug)!);
}

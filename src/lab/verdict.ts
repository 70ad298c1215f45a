/**
 * The one function that decides a verdict. grade, watch, list and --json all call
 * decideVerdict() with what they observed, so they cannot disagree on pass, fail or error.
 */
import { TEST_LEVELS, type TestLevel } from '../course/exercise-schema.ts';
import type { ReportedModule, ReportedTest } from './report.ts';
import { TEST_HEAP_MB } from './heartbeat.ts';
import type { Hang } from './suite-runner.ts';

export interface TestVerdict {
  name: string;
  level: TestLevel;
  status: 'pass' | 'fail';
  message?: string;
  /** What the learner's code printed during the test (capped). */
  output?: string;
}

/** Modelled on Exercism's test-runner results.json v3. */
export interface ExerciseVerdict {
  slug: string;
  /** pass: every test passed and the file type-checks; fail: a test or the type check failed; error: the suite could not run to the end. */
  status: 'pass' | 'fail' | 'error';
  /** Why the exercise errored, or problems outside the tests (type errors, escaped errors). */
  message?: string;
  tests: TestVerdict[];
  /** The seed the suite drew its test data from: --seed repeats the run. */
  seed?: number;
}

/** Everything observed of one exercise's run. */
export interface Evidence {
  slug: string;
  /** The file to grade does not exist (the path to show). */
  missingFile?: string;
  /** The suite's report, when it ran to the end. */
  module?: ReportedModule;
  /** Tests that finished before the run was stopped. */
  finished?: ReportedTest[];
  hang?: Hang;
  /** The test process died: what it said. */
  crash?: string;
  /** Errors that escaped the learner's code unawaited, during this suite. */
  unhandled?: string[];
  /** The type checker's errors in the learner's files, one per line. */
  typeErrors?: string;
  /** The run's time limit, for the hang message. */
  limitMs?: number;
}

const levelOf = (name: string): TestLevel => TEST_LEVELS.find((level) => name.startsWith(`${level} >`)) ?? 'core';

/** Rewrites Vitest's terse messages into ones that say what to look for. */
export function friendlier(message: string): string {
  const timedOut = /Test timed out in (\d+)ms/.exec(message);
  if (timedOut) {
    return `Timed out after ${Number(timedOut[1]) / 1000} s: a promise in your code never settled. Look for a missing await, a lock or lease never released, or a wait with no deadline.`;
  }
  if (
    /Failed to resolve import|Cannot find module|Failed to load url/.test(message) &&
    /@impl|exercises|solutions/.test(message)
  ) {
    return `The exercise file could not be loaded: ${message.split('\n')[0]}`;
  }
  return message.replace(/\u001b\[[0-9;]*m/g, '');
}

/** One line per distinct error, with how often it was raised: one bug, one line. */
export function dedupe(messages: string[]): string[] {
  const counts = new Map<string, number>();
  for (const message of messages) counts.set(message, (counts.get(message) ?? 0) + 1);
  return [...counts].map(([message, n]) => (n > 1 ? `${message}\n  (raised ${n} times)` : message));
}

function toVerdict(test: ReportedTest): TestVerdict | null {
  if (test.status === 'skip') return null;
  const output =
    test.output && (test.outputCut ? `${test.output}\n… (${test.outputCut} more characters of output)` : test.output);
  return {
    name: test.name,
    level: levelOf(test.name),
    status: test.status,
    ...(test.message && { message: friendlier(test.message) }),
    ...(output && { output }),
  };
}

export function hangMessage(hang: Hang, limitMs?: number): string {
  const where = hang.test ? `"${hang.test}"` : 'The suite';
  const seconds = (hang.afterMs / 1000).toFixed(1);
  if (hang.kind === 'memory') {
    return (
      `Stopped after ${seconds} s: ${where} ran out of memory (a test thread may use ${TEST_HEAP_MB} MB of ` +
      'JavaScript heap, and grading every exercise needs less than half of that). Something in your code ' +
      'grows without bound: an array, map or string appended to and never cleared, or a loop that keeps ' +
      'starting calls. In production that is the server the kernel kills for memory.'
    );
  }
  if (hang.kind === 'loop') {
    return (
      `Stopped after ${seconds} s: ${where} never let the event loop turn (no timer could run). ` +
      'Look for a loop that awaits only Redis replies or nothing at all: the mock Redis answers ' +
      'instantly, so such a loop spins forever. A retry loop needs a limit and a real delay. (Code that ' +
      'keeps something growing without bound stops a thread the same way, busy collecting garbage.)'
    );
  }
  return (
    `Stopped at the suite's time limit (${((limitMs ?? hang.afterMs) / 1000).toFixed(0)} s): ${where} was still running. ` +
    'Timers were still firing, so this is not a busy loop: something your code awaits never settles ' +
    '(a promise never resolved, a lock or lease never released, a wait with no deadline).'
  );
}

export function decideVerdict(evidence: Evidence): ExerciseVerdict {
  const { slug } = evidence;
  if (evidence.missingFile) return { slug, status: 'error', message: `No file at ${evidence.missingFile}.`, tests: [] };

  const reported = evidence.module?.tests ?? evidence.finished ?? [];
  const tests = reported.map(toVerdict).filter((test): test is TestVerdict => test !== null);
  const problems: string[] = [];
  let status: ExerciseVerdict['status'];

  if (evidence.module) {
    const moduleErrors = evidence.module.errors.map(friendlier);
    if (moduleErrors.length || tests.length === 0) {
      status = 'error';
      problems.push(moduleErrors.join('\n') || 'The suite found no tests.');
    } else status = tests.every((test) => test.status === 'pass') ? 'pass' : 'fail';
  } else {
    status = 'error';
    if (evidence.hang) {
      problems.push(`${hangMessage(evidence.hang, evidence.limitMs)} The tests after it did not run.`);
      if (evidence.hang.test && !tests.some((test) => test.name === evidence.hang!.test)) {
        const message = 'This test was running when the suite was stopped (see above).';
        tests.push({ name: evidence.hang.test, level: levelOf(evidence.hang.test), status: 'fail', message });
      }
    } else problems.push(`The test run crashed:\n${evidence.crash?.trim() || 'no report came back.'}`);
  }

  if (evidence.unhandled?.length) {
    status = 'error';
    problems.push(
      'An error escaped your code without being awaited (an unhandled rejection). It would crash a ' +
        `Node process in production:\n${dedupe(evidence.unhandled.map(friendlier)).join('\n')}`,
    );
  }
  if (evidence.typeErrors) {
    if (status === 'pass') status = 'fail';
    problems.push(`Type errors:\n${evidence.typeErrors}`);
  }
  return { slug, status, ...(problems.length && { message: problems.join('\n') }), tests };
}

/** The verdict in a few words, for `lab list` and the watch header. */
export function verdictSummary(verdict: ExerciseVerdict): string {
  const passed = verdict.tests.filter((test) => test.status === 'pass').length;
  const counts = `${passed}/${verdict.tests.length} tests`;
  if (verdict.status === 'pass') return counts;
  const firstLine = (verdict.message ?? '').split('\n')[0]!;
  if (verdict.status === 'error')
    return `${counts}; ${firstLine.length > 90 ? `${firstLine.slice(0, 89)}…` : firstLine}`;
  if (verdict.tests.every((test) => test.status === 'pass') && verdict.message?.startsWith('Type errors'))
    return `${counts}, but the file has type errors`;
  return counts;
}

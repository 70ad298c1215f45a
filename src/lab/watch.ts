/**
 * `lab watch`: re-grades an exercise on every save with the same test process, type check and
 * verdict function as `grade`, so the two never disagree. The test process stays warm between
 * saves; a save starts the run at once (no debounce), and a save during a long run abandons it.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import path from 'node:path';
import type { Exercise } from '../course/exercise-schema.ts';
import { EXERCISES_DIR, exercisePaths } from '../course/paths.ts';
import { DEFAULT_SUITE_LIMIT_MS, evidenceFrom, newSeed } from './grade.ts';
import { formatVerdict } from './format.ts';
import { nextHint } from './hints.ts';
import { readState, recordVerdicts } from './state.ts';
import { siteUrl } from './site-url.ts';
import { redisOptionsOf, SuiteHost, type RedisOptions } from './suite-runner.ts';
import { typeCheck } from './type-check.ts';
import { decideVerdict, type ExerciseVerdict } from './verdict.ts';

/** A save during a run younger than this waits for it; an older run is abandoned. */
const ABANDON_AFTER_MS = 1_500;

export interface WatchHandle {
  stop(): void;
  /** Grades again now, even if nothing changed (the learner pressed r). */
  rerun(): void;
}

export interface WatchOptions extends RedisOptions {
  implRoot?: string;
  suiteTimeLimitMs?: number;
  /** Test data seed; one per watch session when not given, so saves see the same data. */
  seed?: number | undefined;
}

export function startWatch(
  exercise: Exercise,
  options: WatchOptions,
  onVerdict: (verdict: ExerciseVerdict) => void,
): WatchHandle {
  const implRoot = path.resolve(options.implRoot ?? EXERCISES_DIR);
  const limit = options.suiteTimeLimitMs ?? DEFAULT_SUITE_LIMIT_MS;
  const seed = options.seed ?? newSeed();
  const dir = path.dirname(exercisePaths(exercise.slug, implRoot).source);
  const host = new SuiteHost({ implRoot, ...redisOptionsOf(options) });
  let stopped = false;
  let running: { startedAt: number; abandoned: boolean } | null = null;
  let again = false;
  const changed = new Set<string>();
  let graded: string | null = null;
  // One save fires several file events (truncate, write, rename): grade each content once.
  const contents = () =>
    fs
      .readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile() && !entry.parentPath.includes('node_modules'))
      .map((entry) => {
        const file = path.join(entry.parentPath, entry.name);
        return `${file}\0${fs.readFileSync(file, 'utf8')}`;
      })
      .sort()
      .join('\0');

  const gradeNow = async () => {
    if (stopped) return;
    if (running) {
      again = true;
      if (performance.now() - running.startedAt > ABANDON_AFTER_MS) {
        running.abandoned = true;
        host.stop(); // the run in progress ends now; the next one starts a fresh process
      }
      return;
    }
    let now: string;
    try {
      now = contents();
    } catch {
      now = String(Math.random()); // the folder is being rewritten: grade what is there
    }
    if (now === graded) return;
    const run = { startedAt: performance.now(), abandoned: false };
    running = run;
    again = false;
    const files = [...changed];
    changed.clear();
    const source = exercisePaths(exercise.slug, implRoot).source;
    let verdict: ExerciseVerdict;
    if (!fs.existsSync(source)) verdict = decideVerdict({ slug: exercise.slug, missingFile: source });
    else {
      const [result, typeErrors] = await Promise.all([
        host.run([exercise.slug], { changed: files, limitMs: limit, seed }),
        typeCheck([exercise.slug], implRoot),
      ]);
      const errors = typeErrors.get(exercise.slug);
      verdict = {
        ...decideVerdict({
          ...evidenceFrom(exercise.slug, result, true, limit),
          ...(errors && { typeErrors: errors }),
        }),
        seed,
      };
      // After a kill, warm the next process now, so the save that fixes the bug is graded fast.
      if (result.hang && !stopped) void host.start().catch(() => {});
    }
    running = null;
    if (!run.abandoned) graded = now;
    if (!run.abandoned && !stopped) onVerdict(verdict);
    if (again) void gradeNow();
  };

  const watcher = fs.watch(dir, { recursive: true }, (_event, name) => {
    if (name && !String(name).includes('node_modules')) changed.add(path.join(dir, String(name)));
    void gradeNow();
  });
  void gradeNow();
  return {
    stop() {
      stopped = true;
      watcher.close();
      host.stop();
    },
    rerun() {
      graded = null;
      void gradeNow();
    },
  };
}

const KEYS = 'Keys: h next hint · r run again · l list · n next exercise · q quit';

/** A terminal the learner types single keys into; tests hand in a fake one. */
export interface KeyInput extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?(raw: boolean): unknown;
}

export interface WatchSession {
  exercises: Exercise[];
  /** Where keys come from: the terminal (process.stdin) by default, when it is one. */
  input?: KeyInput;
  /** Ends the process; tests replace it. */
  exit?: () => void;
}

/**
 * `lab watch`: the verdict on every save, and single keys for what a learner does next, shown
 * under each verdict. Keys work only in a terminal; piped input leaves watch as it was.
 */
export function watch(
  exercise: Exercise,
  options: WatchOptions & { all?: boolean; verbose?: boolean },
  session: WatchSession = { exercises: [exercise] },
) {
  const input: KeyInput = session.input ?? (process.stdin as KeyInput);
  const exit = session.exit ?? (() => process.exit(0));
  let current = exercise;
  let handle = follow(current, options);

  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const stop = () => {
    for (const signal of signals) process.removeListener(signal, stop);
    handle.stop();
    if (input.isTTY) input.setRawMode?.(false);
    input.removeListener('keypress', onKey);
    input.pause?.();
    exit();
  };
  const onKey = (text: string | undefined, key: { name?: string; ctrl?: boolean } = {}) => {
    const name = key.name ?? text;
    if (name === 'q' || (key.ctrl && name === 'c')) return stop();
    if (name === 'h') return console.log(`\n${nextHint(current)}\n${KEYS}`);
    if (name === 'r') return handle.rerun();
    if (name === 'l') return console.log(`\n${listFromState(session.exercises)}\n${KEYS}`);
    if (name === 'n') {
      const state = readState();
      const others = session.exercises.filter((e) => e.slug !== current.slug);
      const next = others.find((e) => state.lastGrade[e.slug]?.status !== 'pass') ?? others[0];
      if (!next) return console.log(`\n${current.slug} is the only exercise.\n${KEYS}`);
      handle.stop();
      current = next;
      handle = follow(current, options);
    }
  };
  if (input.isTTY) {
    readline.emitKeypressEvents(input);
    input.setRawMode?.(true);
    input.on('keypress', onKey);
    input.resume?.();
  }
  // Ctrl+C (without a terminal in raw mode), a closed terminal or a kill: the test process goes
  // with us (and exits by itself if we die without a word, when its IPC channel closes).
  for (const signal of signals) process.on(signal, stop);
  return {
    stop,
    get exercise() {
      return current;
    },
  };
}

/** Watches one exercise and prints each verdict. */
function follow(exercise: Exercise, options: WatchOptions & { all?: boolean; verbose?: boolean }): WatchHandle {
  const dir = path.dirname(exercisePaths(exercise.slug, options.implRoot ?? EXERCISES_DIR).source);
  console.log(`Watching ${path.relative(process.cwd(), dir) || '.'}/ — save to re-grade.\n`);
  let savedAt = 0;
  const saves = fs.watch(dir, () => {
    savedAt ||= performance.now();
  });
  const handle = startWatch(exercise, options, (verdict) => {
    recordVerdicts([verdict], options.implRoot ?? EXERCISES_DIR);
    const took = savedAt ? ` (${Math.round(performance.now() - savedAt)} ms after save)` : '';
    console.clear();
    console.log(`${new Date().toLocaleTimeString()}${took}\n`);
    console.log(
      formatVerdict(verdict, exercise, {
        all: options.all,
        verbose: options.verbose,
        moreHint: `npm run lab -- watch ${exercise.slug} --all`,
      }),
    );
    console.log(
      verdict.status === 'pass'
        ? `Solved. Compare with the reference and its walkthrough: ${siteUrl(`/exercises/${exercise.slug}/#reference-solution`)}`
        : `Stuck? Press h for a hint, or reread the lesson: ${siteUrl(`/lessons/${exercise.lesson}/`)}`,
    );
    console.log(KEYS);
    savedAt = 0;
  });
  return {
    stop() {
      saves.close();
      handle.stop();
    },
    rerun: () => handle.rerun(),
  };
}

/** The exercises and their last verdicts, from what the runner remembers (no grading). */
function listFromState(exercises: Exercise[]): string {
  const state = readState();
  const width = Math.max(...exercises.map((e) => e.slug.length));
  return exercises
    .map((e) => {
      const last = state.lastGrade[e.slug];
      const mark = last?.status === 'pass' ? '✔' : last ? '✘' : '·';
      return `  ${mark} ${e.slug.padEnd(width)}  ${last ? (last.summary ?? `${last.passed}/${last.total} tests`) : 'not graded yet'}`;
    })
    .join('\n');
}

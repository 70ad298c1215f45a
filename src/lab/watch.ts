/**
 * `lab watch`: re-grades an exercise on every save with the same test process, type check and
 * verdict function as `grade`, so the two never disagree. The test process stays warm between
 * saves; a save starts the run at once (no debounce), and a save during a long run abandons it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Exercise } from '../course/exercise-schema.ts';
import { EXERCISES_DIR, exercisePaths } from '../course/paths.ts';
import { DEFAULT_SUITE_LIMIT_MS, evidenceFrom, newSeed } from './grade.ts';
import { formatVerdict } from './format.ts';
import { recordVerdicts } from './state.ts';
import { siteUrl } from './site-url.ts';
import { SuiteHost } from './suite-runner.ts';
import { typeCheck } from './type-check.ts';
import { decideVerdict, type ExerciseVerdict } from './verdict.ts';

/** A save during a run younger than this waits for it; an older run is abandoned. */
const ABANDON_AFTER_MS = 1_500;

export interface WatchHandle {
  stop(): void;
}

export interface WatchOptions {
  redisUrl?: string;
  implRoot?: string;
  suiteTimeLimitMs?: number;
  /** Test data seed; one per watch session when not given, so saves see the same data. */
  seed?: number | undefined;
}

export function startWatch(exercise: Exercise, options: WatchOptions, onVerdict: (verdict: ExerciseVerdict) => void): WatchHandle {
  const implRoot = path.resolve(options.implRoot ?? EXERCISES_DIR);
  const limit = options.suiteTimeLimitMs ?? DEFAULT_SUITE_LIMIT_MS;
  const seed = options.seed ?? newSeed();
  const dir = path.dirname(exercisePaths(exercise.slug, implRoot).source);
  const host = new SuiteHost({ implRoot, ...(options.redisUrl && { redisUrl: options.redisUrl }) });
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
      const [result, typeErrors] = await Promise.all([host.run([exercise.slug], { changed: files, limitMs: limit, seed }), typeCheck([exercise.slug], implRoot)]);
      const errors = typeErrors.get(exercise.slug);
      verdict = { ...decideVerdict({ ...evidenceFrom(exercise.slug, result, true, limit), ...(errors && { typeErrors: errors }) }), seed };
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
  };
}

export function watch(exercise: Exercise, options: WatchOptions & { all?: boolean; verbose?: boolean }) {
  const dir = path.dirname(exercisePaths(exercise.slug, options.implRoot ?? EXERCISES_DIR).source);
  console.log(`Watching ${path.relative(process.cwd(), dir) || '.'}/ — save to re-grade, Ctrl+C to stop.\n`);
  let savedAt = 0;
  fs.watch(dir, () => {
    savedAt ||= performance.now();
  });
  const handle = startWatch(exercise, options, (verdict) => {
    recordVerdicts([verdict], options.implRoot ?? EXERCISES_DIR);
    const took = savedAt ? ` (${Math.round(performance.now() - savedAt)} ms after save)` : '';
    console.clear();
    console.log(`${new Date().toLocaleTimeString()}${took}\n`);
    console.log(formatVerdict(verdict, exercise, { all: options.all, verbose: options.verbose, moreHint: `npm run lab -- watch ${exercise.slug} --all` }));
    console.log(
      verdict.status === 'pass'
        ? `Solved. Compare with the reference and its walkthrough: ${siteUrl(`/exercises/${exercise.slug}/#reference-solution`)}\nNext: npm run lab`
        : `Stuck? npm run lab -- hint ${exercise.slug}, or reread the lesson: ${siteUrl(`/lessons/${exercise.lesson}/`)}`,
    );
    savedAt = 0;
  });
  // Ctrl+C, a closed terminal or a kill: the test process goes with us (and exits by itself
  // if we die without a word, when its IPC channel closes).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      handle.stop();
      process.exit(0);
    });
  }
}

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Exercise } from '../course/exercise-schema.ts';
import { EXERCISES_DIR, exercisePaths, ROOT } from '../course/paths.ts';
import { verdictFrom, type ExerciseVerdict } from './grade.ts';
import { formatVerdict } from './format.ts';
import type { ReportedModule } from './vitest-reporter.ts';

const VITEST = path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
const REPORTER = path.join(ROOT, 'src', 'lab', 'vitest-reporter.ts');
const TIME_LIMIT_MS = 30_000;

export interface WatchHandle {
  stop(): void;
}

/**
 * Keeps one Vitest process in watch mode on the exercise (re-runs are fast because Vite keeps
 * its module graph warm), and a watchdog outside it: if a save produces no verdict within the
 * time limit, the process is killed and started again.
 */
export function startWatch(
  exercise: Exercise,
  options: { redisUrl?: string; implRoot?: string },
  onVerdict: (verdict: ExerciseVerdict) => void,
): WatchHandle {
  const implRoot = options.implRoot ?? EXERCISES_DIR;
  let child: ChildProcess | null = null;
  let watchdog: NodeJS.Timeout | null = null;
  let stopped = false;

  const armWatchdog = () => {
    if (watchdog) clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      onVerdict({ slug: exercise.slug, status: 'error', message: `No verdict within ${TIME_LIMIT_MS / 1000} s: the suite was stopped. Look for a loop that never awaits real I/O, or a retry loop with no limit. Save again to re-grade.`, tests: [] });
      restart();
    }, TIME_LIMIT_MS);
  };

  const start = () => {
    const env: NodeJS.ProcessEnv = { ...process.env, LAB_IMPL_ROOT: implRoot, FORCE_COLOR: '0' };
    if (options.redisUrl) env.REDIS_URL = options.redisUrl;
    child = spawn(process.execPath, [VITEST, 'watch', '--project', 'graded', '--reporter', REPORTER, path.relative(ROOT, exercisePaths(exercise.slug).suite)], {
      cwd: ROOT,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffer = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (!line.startsWith('LAB_MODULE ')) continue;
        if (watchdog) clearTimeout(watchdog);
        onVerdict(verdictFrom(exercise.slug, JSON.parse(line.slice(11)) as ReportedModule));
      }
    });
    child.stderr!.resume();
  };

  const kill = () => {
    if (child?.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }
    child = null;
  };

  const restart = () => {
    kill();
    if (!stopped) start();
  };

  const source = exercisePaths(exercise.slug, implRoot).source;
  const watcher = fs.watch(path.dirname(source), () => armWatchdog());
  start();
  armWatchdog();
  return {
    stop() {
      stopped = true;
      watcher.close();
      if (watchdog) clearTimeout(watchdog);
      kill();
    },
  };
}

export function watch(exercise: Exercise, options: { redisUrl?: string }) {
  console.log(`Watching exercises/${exercise.slug}/ — save to re-grade, Ctrl+C to stop.\n`);
  let savedAt = 0;
  fs.watch(path.dirname(exercisePaths(exercise.slug).source), () => {
    savedAt = Date.now();
  });
  const handle = startWatch(exercise, options, (verdict) => {
    const took = savedAt ? ` (${Date.now() - savedAt} ms after save)` : '';
    console.clear();
    console.log(`${new Date().toLocaleTimeString()}${took}\n`);
    console.log(formatVerdict(verdict, exercise));
    console.log(verdict.status === 'pass' ? 'Solved. Next: npm run lab' : `Stuck? npm run lab -- hint ${exercise.slug}`);
    savedAt = 0;
  });
  process.on('SIGINT', () => {
    handle.stop();
    process.exit(0);
  });
}

/**
 * `npm run bench`: how fast and how heavy the lab is on this machine. Grading every exercise
 * against solutions/ (mock and real Redis), watch feedback from save to verdict, peak memory of
 * the grading process tree, and the site's figures when the site benches are present.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadExercises } from '../course/catalog.ts';
import { exercisePaths, ROOT, SOLUTIONS_DIR } from '../course/paths.ts';
import { grade } from '../lab/grade.ts';
import { startThrowawayRedis } from './redis-server.ts';
import { startWatch } from '../lab/watch.ts';

interface Row {
  metric: string;
  value: number | string;
  unit: string;
  target?: string;
}
const rows: Row[] = [];
const slugs = loadExercises().map((e) => e.slug);

/** Total resident memory of this process and its descendants, in MB (Linux /proc). */
function treeRssMb(rootPid = process.pid): number {
  let total = 0;
  const visit = (pid: number) => {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
      const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      children.forEach((child) => visit(Number(child)));
    } catch {
      // the process ended while we looked
    }
  };
  visit(rootPid);
  return total;
}

async function timed<T>(run: () => Promise<T>): Promise<{ ms: number; peakMb: number; result: T }> {
  let peakMb = treeRssMb();
  const poll = setInterval(() => (peakMb = Math.max(peakMb, treeRssMb())), 25);
  const start = performance.now();
  const result = await run();
  const ms = performance.now() - start;
  clearInterval(poll);
  return { ms, peakMb, result };
}

const VITEST = path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
const BENCH_REPORTER = path.join(ROOT, 'src', 'dev', 'bench-reporter.ts');
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const suiteOf = (slug: string) => path.relative(ROOT, exercisePaths(slug).suite);

/** Plain `vitest run` of the same suites on the same folder: the yardstick for grading. */
function plainVitestRun(suites: string[]): Promise<number> {
  const start = performance.now();
  const child = spawn(
    process.execPath,
    [VITEST, 'run', '--project', 'graded', '--reporter', BENCH_REPORTER, ...suites],
    {
      cwd: ROOT,
      env: { ...process.env, LAB_IMPL_ROOT: SOLUTIONS_DIR, REDIS_URL: '' },
      stdio: 'ignore',
    },
  );
  return new Promise((resolve) => child.on('exit', () => resolve(performance.now() - start)));
}

/** Median of `runs` alternating samples of ours and plain Vitest: the machine is noisy, ratios are not. */
async function sideBySide(
  label: string,
  ours: () => Promise<unknown>,
  plain: () => Promise<number>,
  target: number,
  runs = 5,
) {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await ours();
    a.push(performance.now() - start);
    b.push(await plain());
  }
  const ratio = median(a) / median(b);
  rows.push({
    metric: `${label}: lab vs plain vitest`,
    value: `${Math.round(median(a))} / ${Math.round(median(b))}`,
    unit: 'ms',
  });
  rows.push({ metric: `${label}: ratio`, value: ratio.toFixed(2), unit: '×', target: `<= ${target}` });
}

/**
 * The learner's `npm run grade -- --from solutions`, without npm: a fresh process with the node
 * flags of package.json's grade script, so its memory is the lab's and not this bench's.
 */
function gradeCli(): Promise<{ ms: number; peakMb: number; code: number | null }> {
  const script = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.grade as string;
  const flags = /node ((?:--\S+ )*)src\/lab\/cli\.ts grade/.exec(script)?.[1]?.trim().split(' ').filter(Boolean);
  if (!flags) throw new Error(`package.json's grade script no longer runs src/lab/cli.ts grade: ${script}`);
  const start = performance.now();
  const child = spawn(
    process.execPath,
    [...flags, path.join(ROOT, 'src/lab/cli.ts'), 'grade', '--from', SOLUTIONS_DIR],
    {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: '' },
      stdio: 'ignore',
    },
  );
  let peakMb = 0;
  const poll = setInterval(() => child.pid && (peakMb = Math.max(peakMb, treeRssMb(child.pid))), 25);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearInterval(poll);
      resolve({ ms: performance.now() - start, peakMb, code });
    }),
  );
}

await gradeCli(); // warm the file-system cache once
// Medians of five runs: on this noisy machine one run's peak swings by ±15 MB.
const cliRuns: Array<Awaited<ReturnType<typeof gradeCli>>> = [];
for (let i = 0; i < 5; i++) cliRuns.push(await gradeCli());
const peaks = cliRuns.map((run) => run.peakMb);
rows.push({
  metric: `npm run grade, all ${slugs.length} solutions, mock (${cliRuns.filter((run) => run.code === 0).length}/5 runs pass, median)`,
  value: Math.round(median(cliRuns.map((run) => run.ms))),
  unit: 'ms',
  target: '<= 2000',
});
rows.push({
  metric: `peak memory of npm run grade (process tree, median of 5; max ${Math.round(Math.max(...peaks))})`,
  value: Math.round(median(peaks)),
  unit: 'MB',
  target: '<= 300',
});
await sideBySide(
  `grade ${slugs[0]}`,
  () => grade({ slugs: [slugs[0]!], implRoot: SOLUTIONS_DIR }),
  () => plainVitestRun([suiteOf(slugs[0]!)]),
  1.1,
);
await sideBySide(
  `grade all ${slugs.length}`,
  () => grade({ slugs, implRoot: SOLUTIONS_DIR }),
  () => plainVitestRun(slugs.map(suiteOf)),
  1.05,
);

const redis = await startThrowawayRedis();
if (redis) {
  const real = await timed(() => grade({ slugs, implRoot: SOLUTIONS_DIR, redisUrl: redis.url }));
  rows.push({
    metric: `grade all solutions, real Redis (${real.result.filter((v) => v.status === 'pass').length} pass)`,
    value: Math.round(real.ms),
    unit: 'ms',
  });
  redis.stop();
} else rows.push({ metric: 'grade all solutions, real Redis', value: 'skipped (no redis-server)', unit: '' });

// Watch: from a save of the file to the verdict, with the watcher already warm; beside it,
// plain `vitest watch` on the same suite and folder, saving the same file.
const exercise = loadExercises()[0]!;
const file = exercisePaths(exercise.slug, SOLUTIONS_DIR).source;
const original = fs.readFileSync(file, 'utf8');
const SAVES = 6;

/** Saves the file once per `onResult()` call and collects save → result times (first run is warm-up). */
function saveLoop(begin: (onResult: () => void) => () => void): Promise<number[]> {
  return new Promise((resolve) => {
    const samples: number[] = [];
    let savedAt = 0;
    let saves = 0;
    let stop = () => {};
    stop = begin(() => {
      if (savedAt) samples.push(performance.now() - savedAt);
      savedAt = 0;
      if (saves >= SAVES) {
        stop();
        resolve(samples);
        return;
      }
      setTimeout(() => {
        savedAt = performance.now();
        fs.writeFileSync(file, `${original}\n// bench ${++saves}\n`);
      }, 300);
    });
  });
}

const ours = await saveLoop((onResult) => startWatch(exercise, { implRoot: SOLUTIONS_DIR }, onResult).stop);
const plain = await saveLoop((onResult) => {
  const child = spawn(
    process.execPath,
    [VITEST, 'watch', '--project', 'graded', '--reporter', BENCH_REPORTER, suiteOf(exercise.slug)],
    {
      cwd: ROOT,
      env: { ...process.env, LAB_IMPL_ROOT: SOLUTIONS_DIR, REDIS_URL: '' },
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true,
    },
  );
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => chunk.includes('BENCH_RUN_END') && onResult());
  return () => process.kill(-child.pid!, 'SIGKILL');
});
fs.writeFileSync(file, original);
rows.push({
  metric: `watch, save to verdict (median of ${ours.length}): lab vs plain vitest watch`,
  value: `${Math.round(median(ours))} / ${Math.round(median(plain))}`,
  unit: 'ms',
  target: '<= 500 (lab)',
});
rows.push({
  metric: 'watch, save to verdict: ratio',
  value: (median(ours) / median(plain)).toFixed(2),
  unit: '×',
  target: '<= 0.8',
});

for (const module of ['./bench-site.ts', './bench-quiz.ts']) {
  if (!fs.existsSync(new URL(module, import.meta.url))) continue;
  const bench = (await import(module)) as Record<string, () => Promise<Row[]>>;
  const run = Object.values(bench).find((value) => typeof value === 'function');
  if (!run) continue;
  try {
    rows.push(...(await run()));
  } catch (error) {
    rows.push({
      metric: `${module} failed`,
      value: String((error as Error).message)
        .split('\n')[0]!
        .slice(0, 80),
      unit: '',
    });
  }
}

const width = Math.max(...rows.map((row) => row.metric.length));
console.log(`${'metric'.padEnd(width)}  value           target`);
for (const row of rows)
  console.log(`${row.metric.padEnd(width)}  ${`${row.value} ${row.unit}`.padEnd(14)}  ${row.target ?? ''}`);

/**
 * `npm run bench`: how fast and how heavy the lab is on this machine. Grading every exercise
 * against solutions/ (mock and real Redis), watch feedback from save to verdict, peak memory of
 * the grading process tree, and the site's figures when the site benches are present.
 */
import fs from 'node:fs';
import { loadExercises } from '../course/catalog.ts';
import { exercisePaths, SOLUTIONS_DIR } from '../course/paths.ts';
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

await grade({ slugs, implRoot: SOLUTIONS_DIR }); // warm the file-system cache once
const mock = await timed(() => grade({ slugs, implRoot: SOLUTIONS_DIR }));
const mockPass = mock.result.filter((v) => v.status === 'pass').length;
rows.push({ metric: `grade all ${slugs.length} solutions, mock (${mockPass} pass)`, value: Math.round(mock.ms), unit: 'ms', target: '<= 2000' });
rows.push({ metric: 'peak memory while grading (process tree)', value: Math.round(mock.peakMb), unit: 'MB', target: '<= 300' });

const redis = await startThrowawayRedis();
if (redis) {
  const real = await timed(() => grade({ slugs, implRoot: SOLUTIONS_DIR, redisUrl: redis.url }));
  rows.push({ metric: `grade all solutions, real Redis (${real.result.filter((v) => v.status === 'pass').length} pass)`, value: Math.round(real.ms), unit: 'ms' });
  redis.stop();
} else rows.push({ metric: 'grade all solutions, real Redis', value: 'skipped (no redis-server)', unit: '' });

// Watch: time from a save of the file to the verdict, with the watcher already running.
const exercise = loadExercises()[0]!;
const file = exercisePaths(exercise.slug, SOLUTIONS_DIR).source;
const original = fs.readFileSync(file, 'utf8');
const samples: number[] = [];
await new Promise<void>((resolve) => {
  let savedAt = 0;
  let runs = 0;
  const handle = startWatch(exercise, { implRoot: SOLUTIONS_DIR }, () => {
    if (savedAt) samples.push(performance.now() - savedAt);
    if (++runs > 5) {
      handle.stop();
      resolve();
      return;
    }
    setTimeout(() => {
      savedAt = performance.now();
      fs.writeFileSync(file, `${original}\n// bench ${runs}\n`);
    }, 300);
  });
});
fs.writeFileSync(file, original);
samples.sort((a, b) => a - b);
rows.push({ metric: `watch feedback, save to verdict (median of ${samples.length})`, value: Math.round(samples[Math.floor(samples.length / 2)] ?? NaN), unit: 'ms', target: '<= 500' });

for (const module of ['./bench-site.ts', './bench-quiz.ts']) {
  if (!fs.existsSync(new URL(module, import.meta.url))) continue;
  const bench = (await import(module)) as Record<string, () => Promise<Row[]>>;
  const run = Object.values(bench).find((value) => typeof value === 'function');
  if (!run) continue;
  try {
    rows.push(...(await run()));
  } catch (error) {
    rows.push({ metric: `${module} failed`, value: String((error as Error).message).split('\n')[0]!.slice(0, 80), unit: '' });
  }
}

const width = Math.max(...rows.map((row) => row.metric.length));
console.log(`${'metric'.padEnd(width)}  value       target`);
for (const row of rows) console.log(`${row.metric.padEnd(width)}  ${`${row.value} ${row.unit}`.padEnd(10)}  ${row.target ?? ''}`);

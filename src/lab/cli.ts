/**
 * The learner's runner. `npm run lab -- help` lists the commands; `npm run grade` is
 * `lab grade`. Maintainer tools live in src/dev/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadExercises } from '../course/catalog.ts';
import type { Exercise } from '../course/exercise-schema.ts';
import { EXERCISES_DIR, exercisePaths, ROOT } from '../course/paths.ts';
import { grade } from './grade.ts';
import { formatVerdict, progressBar } from './format.ts';
import { verdictSummary } from './verdict.ts';
import { readState, recordVerdicts } from './state.ts';
import { shippedStub } from '../course/pristine.ts';
import { backUp, listBackups, restoreBackup } from './backups.ts';
import { nextHint } from './hints.ts';
import { unifiedDiff } from './line-diff.ts';
import { siteUrl } from './site-url.ts';
import { watch } from './watch.ts';
import { startThrowawayCluster } from './redis-cluster.ts';
import type { RedisOptions } from './suite-runner.ts';

const HELP = `System Design Lab — exercise runner

  npm run lab                         list the exercises with their state and your progress
  npm run lab -- watch [slug] [--all] [--from DIR] [--seed N] [--redis URL | --cluster [URL]]
                                      re-grade on every save (default: the first unsolved one);
                                      keys: h hint, r run again, l list, n next, q quit
  npm run lab -- hint <slug>          show the next hint (they are remembered)
  npm run lab -- reset <slug>         restore the starting file (yours is backed up first)
  npm run lab -- restore <slug> [N]   bring back your newest backup (or the N-th); lists them all
  npm run lab -- diff <slug>          your file against the reference solution
  npm run lab -- solution <slug>      the reference and its walkthrough (once you pass, or --yes)
  npm run grade -- [slug…] [--from DIR] [--redis URL | --cluster [URL] | --cluster-rules] [--seed N]
                  [--json] [--all] [--verbose]
                                      grade exercises/ (or DIR laid out like it); exit 0 only if all pass

Options: --redis URL grades against a real Redis (keys under a unique prefix, removed after;
nothing is flushed). --cluster starts a throwaway local Redis Cluster (3 primaries, from
redis-server, nothing kept) and grades on it; --cluster URL uses an existing cluster instead (never
flushed either); --cluster-replicas N gives the local one N replicas per primary. --cluster-rules grades on the mock but refuses what a cluster refuses (keys of
one script, transaction or multi-key command in different slots). --all prints every failing test, not only the first per exercise;
--verbose prints every test, passing ones too, with what your code printed. --seed N repeats
the test data of a run that printed that seed (watch takes it too).`;

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

function findExercise(exercises: Exercise[], slug: string | undefined): Exercise {
  if (!slug) fail(`Name an exercise: ${exercises.map((e) => e.slug).join(', ')}`);
  const exercise = exercises.find((e) => e.slug === slug);
  if (!exercise) fail(`No exercise "${slug}". The exercises are: ${exercises.map((e) => e.slug).join(', ')}`);
  return exercise;
}

async function list(exercises: Exercise[], target: RedisOptions) {
  const verdicts = await grade({ slugs: exercises.map((e) => e.slug), implRoot: EXERCISES_DIR, ...target });
  recordVerdicts(verdicts, EXERCISES_DIR);
  const state = readState();
  console.log('System Design Lab — exercises\n');
  let solved = 0;
  const titleWidth = Math.max(...exercises.map((e) => e.title.length));
  const slugWidth = Math.max(...exercises.map((e) => e.slug.length));
  for (const [i, exercise] of exercises.entries()) {
    const verdict = verdicts[i]!;
    const untouched = shippedStub(exercise.slug) === readFile(exercisePaths(exercise.slug).source);
    const label = verdict.status === 'pass' ? '✔ solved     ' : untouched ? '· not started' : '✘ failing    ';
    if (verdict.status === 'pass') solved++;
    const hints = state.hintsShown[exercise.slug] ?? 0;
    console.log(
      `  ${label}  ${exercise.slug.padEnd(slugWidth)}  ${exercise.title.padEnd(titleWidth)}   ${untouched && verdict.status !== 'pass' ? `${verdict.tests.length} tests` : verdictSummary(verdict)}${hints ? `, ${hints} hint(s) seen` : ''}`,
    );
  }
  console.log(`\n  ${progressBar(solved, exercises.length)} ${solved}/${exercises.length} solved\n`);
  const next = exercises.find((_, i) => verdicts[i]!.status !== 'pass');
  console.log(
    next
      ? `Next: npm run lab -- watch ${next.slug}\n  the task: exercises/${next.slug}/README.md, or ${siteUrl(`/exercises/${next.slug}/`)}`
      : 'All exercises solved. Try them against a real Redis: npm run grade -- --redis redis://127.0.0.1:6379',
  );
}

function readFile(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function hint(exercise: Exercise) {
  console.log(nextHint(exercise));
}

function reset(exercise: Exercise) {
  const file = exercisePaths(exercise.slug).source;
  const stub = shippedStub(exercise.slug);
  if (stub === null)
    fail(
      `The starting file ${shown(exercisePaths(exercise.slug).starter)} is missing from this copy of the course; nothing was changed.`,
    );
  const current = readFile(file);
  if (current === stub) {
    console.log(`${path.relative(process.cwd(), file)} is already the starting file.`);
    return;
  }
  if (current !== null)
    console.log(
      `Your file is saved at ${shown(backUp(exercise.slug, current))} (npm run lab -- restore ${exercise.slug} brings it back).`,
    );
  fs.writeFileSync(file, stub);
  console.log(`Restored ${shown(file)} to the starting file.`);
}

/** A project file as the learner can find it: relative to the project root. */
const shown = (file: string) => path.relative(ROOT, file);

function restore(exercise: Exercise, which: string | undefined) {
  const n = which === undefined ? 1 : Number(which);
  if (!Number.isInteger(n) || n < 1)
    fail(`restore ${exercise.slug} ${which}: give the number of a backup from the list (1 is the newest).`);
  let result: ReturnType<typeof restoreBackup>;
  try {
    result = restoreBackup(exercise.slug, n);
  } catch (error) {
    fail((error as Error).message);
  }
  if (result.savedCurrent) console.log(`Your file as it was is saved at ${shown(result.savedCurrent)}.`);
  console.log(
    `Restored ${shown(exercisePaths(exercise.slug).source)} from ${shown(result.restored)}.\n\nBackups, newest first:`,
  );
  listBackups(exercise.slug).forEach((file, i) => console.log(`  ${String(i + 1).padStart(2)}. ${shown(file)}`));
}

function diff(exercise: Exercise) {
  const paths = exercisePaths(exercise.slug);
  const mine = readFile(paths.source);
  if (mine === null)
    fail(`No file at ${shown(paths.source)}: npm run lab -- reset ${exercise.slug} brings back the starting file.`);
  const text = unifiedDiff(fs.readFileSync(paths.solution, 'utf8'), mine, [shown(paths.solution), shown(paths.source)]);
  console.log(text || `${shown(paths.source)} is the reference solution, line for line.`);
}

function solution(exercise: Exercise, confirmed: boolean) {
  const passed = readState().lastGrade[exercise.slug]?.status === 'pass';
  if (!passed && !confirmed) {
    fail(
      `You have not passed ${exercise.slug} yet, and the reference is easier to learn from after you have. To see it anyway: npm run lab -- solution ${exercise.slug} --yes`,
    );
  }
  const paths = exercisePaths(exercise.slug);
  console.log(`${fs.readFileSync(paths.solution, 'utf8')}\n── ${shown(paths.solution)}`);
  console.log(
    `The walkthrough (why each choice): ${siteUrl(`/exercises/${exercise.slug}/#reference-solution`)}, or ${shown(paths.walkthrough)}`,
  );
  console.log(`Your file against it: npm run lab -- diff ${exercise.slug}`);
}

/** `--cluster` with or without an address: parseArgs has no optional values, so it is read first. */
function takeClusterFlag(argv: string[]): { argv: string[]; cluster?: string | true } {
  const rest: string[] = [];
  let cluster: string | true | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith('--cluster=')) cluster = arg.slice('--cluster='.length) || true;
    else if (arg === '--cluster') {
      const next = argv[i + 1];
      if (next && /^rediss?:\/\//.test(next)) (cluster = next), i++;
      else cluster = true;
    } else rest.push(arg);
  }
  return { argv: rest, ...(cluster && { cluster }) };
}

/** The Redis the suites get; a throwaway cluster lives until this process ends. */
async function redisTarget(
  values: {
    redis?: string | undefined;
    'cluster-rules'?: boolean | undefined;
    'cluster-replicas'?: string | undefined;
  },
  cluster: string | true | undefined,
  watching: boolean,
): Promise<RedisOptions> {
  if (cluster && values.redis) fail('Give --redis URL or --cluster, not both.');
  if (typeof cluster === 'string') return { redisUrl: cluster, cluster: true };
  if (cluster) {
    const replicas = Number(values['cluster-replicas'] ?? 0);
    if (!(Number.isInteger(replicas) && replicas >= 0 && replicas <= 2))
      fail(`--cluster-replicas ${values['cluster-replicas']}: give 0, 1 or 2 replicas per primary.`);
    console.error(
      `Starting a local Redis Cluster (3 primaries${replicas ? `, ${replicas} replica(s) each` : ''} on loopback, nothing persisted)…`,
    );
    let local: Awaited<ReturnType<typeof startThrowawayCluster>>;
    try {
      local = await startThrowawayCluster({ replicas });
    } catch (error) {
      fail((error as Error).message);
    }
    // However this process ends, no node and no file of the cluster outlives it.
    process.on('exit', local.stopNow);
    // (watch ends through process.exit on its own signals; grade would die without 'exit'.)
    if (!watching)
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => process.exit(130));
    return { redisUrl: local.url, cluster: true };
  }
  const redisUrl = values.redis ?? process.env.REDIS_URL;
  return { ...(redisUrl && { redisUrl }), ...(values['cluster-rules'] && { clusterRules: true }) };
}

async function main() {
  const { argv, cluster } = takeClusterFlag(process.argv.slice(2));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      from: { type: 'string' },
      redis: { type: 'string' },
      'cluster-rules': { type: 'boolean', default: false },
      'cluster-replicas': { type: 'string' },
      json: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
      yes: { type: 'boolean', default: false },
      seed: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command = 'list', ...rest] = positionals;
  if (values.help || command === 'help') {
    console.log(HELP);
    return;
  }
  const exercises = loadExercises();
  const needsRedis = ['list', 'watch', 'grade'].includes(command);
  const target = needsRedis ? await redisTarget(values, cluster, command === 'watch') : {};
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  if (seed !== undefined && !(Number.isInteger(seed) && seed > 0 && seed < 2 ** 32))
    fail(`--seed ${values.seed}: give the whole number a failing run printed (1 to ${2 ** 32 - 1}).`);

  switch (command) {
    case 'list':
      return list(exercises, target);
    case 'hint':
      return hint(findExercise(exercises, rest[0]));
    case 'reset':
      return reset(findExercise(exercises, rest[0]));
    case 'restore':
      return restore(findExercise(exercises, rest[0]), rest[1]);
    case 'diff':
      return diff(findExercise(exercises, rest[0]));
    case 'solution':
      return solution(findExercise(exercises, rest[0]), values.yes);
    case 'watch': {
      const state = readState();
      const slug =
        rest[0] ?? exercises.find((e) => state.lastGrade[e.slug]?.status !== 'pass')?.slug ?? exercises[0]!.slug;
      const implRoot = values.from ? path.resolve(values.from) : EXERCISES_DIR;
      if (!fs.existsSync(implRoot)) fail(`--from ${values.from}: no such folder.`);
      return watch(
        findExercise(exercises, slug),
        { ...target, implRoot, seed, all: values.all, verbose: values.verbose },
        { exercises },
      );
    }
    case 'grade': {
      const slugs = rest.length ? rest.map((slug) => findExercise(exercises, slug).slug) : exercises.map((e) => e.slug);
      const implRoot = values.from ? path.resolve(values.from) : EXERCISES_DIR;
      if (!fs.existsSync(implRoot)) fail(`--from ${values.from}: no such folder.`);
      const verdicts = await grade({ slugs, implRoot, seed, ...target });
      recordVerdicts(verdicts, implRoot);
      if (values.json) console.log(JSON.stringify({ version: 3, exercises: verdicts }, null, 2));
      else
        for (const verdict of verdicts)
          console.log(
            formatVerdict(verdict, exercises.find((e) => e.slug === verdict.slug)!, {
              all: values.all,
              verbose: values.verbose,
            }),
          );
      process.exitCode = verdicts.every((verdict) => verdict.status === 'pass') ? 0 : 1;
      return;
    }
    default:
      fail(`Unknown command "${command}".\n\n${HELP}`);
  }
}

await main();

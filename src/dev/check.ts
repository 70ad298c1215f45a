/**
 * The maintainers' check that the course holds together (rustlings' `dev check`): every
 * exercise is complete and linked, every solution passes its suite (mock, and a real Redis when
 * one is given), every stub fails it, and no stray files sit in exercises/ or solutions/.
 * Then it grades the mutation corpus (corpus.ts) and prints its score.
 * Usage: node src/dev/check.ts [slug…] [--redis URL] [--cluster URL] [--seed N] (the corpus's test data; fixed by default).
 * Exit 0 when every check passes.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadExercises } from '../course/catalog.ts';
import { loadCourse } from '../course/course.ts';
import { checkCrossReferences, formatProblems } from '../course/cross-references.ts';
import { EXERCISES_DIR, exercisePaths, GRADED_DIR, ROOT, SOLUTIONS_DIR } from '../course/paths.ts';
import { pristineStub, starterDrift, TODO_MARKER } from '../course/pristine.ts';
import { grade } from '../lab/grade.ts';
import type { RedisOptions } from '../lab/suite-runner.ts';
import { checkCorpus, corpusScore } from './corpus.ts';

export interface CheckResult {
  name: string;
  ok: boolean;
  /** What is wrong and how to fix it. */
  problem?: string;
}

const rel = (file: string) => path.relative(ROOT, file);

/** Checks that need no test run: files, markers, links. */
export function checkLayout(): CheckResult[] {
  const results: CheckResult[] = [];
  const exercises = loadExercises();
  const slugs = new Set(exercises.map((e) => e.slug));
  for (const exercise of exercises) {
    const paths = exercisePaths(exercise.slug);
    for (const [what, file] of [
      ['stub', paths.stub],
      ['task README', paths.readme],
      ['reference solution', paths.solution],
      ['walkthrough', paths.walkthrough],
      ['graded suite', paths.suite],
    ] as const) {
      results.push({
        name: `${exercise.slug}: has a ${what}`,
        ok: fs.existsSync(file),
        problem: `Create ${rel(file)}.`,
      });
    }
    // The starting file as shipped: a learner's solved copy in exercises/ is not checked.
    results.push({
      name: `${exercise.slug}: has a shipped starting copy`,
      ok: fs.existsSync(paths.starter),
      problem: `Copy the stub: cp ${rel(paths.stub)} ${rel(paths.starter)} (lab reset writes it back, with or without git).`,
    });
    const drift = starterDrift(exercise.slug);
    results.push({
      name: `${exercise.slug}: its starting copy matches the committed stub`,
      ok: drift === null,
      problem: drift ?? '',
    });
    const stub = pristineStub(exercise.slug);
    if (stub !== null)
      results.push({
        name: `${exercise.slug}: the stub throws TODO`,
        ok: stub.includes(TODO_MARKER),
        problem: `Every method of ${rel(paths.stub)} must throw new Error('TODO: …'), so no placeholder can pass a weak test.`,
      });
    const lesson = path.join(ROOT, 'content', 'lessons', `${exercise.lesson}.mdx`);
    results.push({
      name: `${exercise.slug}: its lesson exists`,
      ok: fs.existsSync(lesson),
      problem: `content/exercises/${exercise.slug}.json names lesson "${exercise.lesson}", but ${rel(lesson)} does not exist.`,
    });
    results.push({
      name: `${exercise.slug}: it has quiz questions`,
      ok: exercise.quiz.length > 0,
      problem: `List the quiz question ids that test this exercise in content/exercises/${exercise.slug}.json ("quiz").`,
    });
    const suite = fs.existsSync(paths.suite) ? fs.readFileSync(paths.suite, 'utf8') : '';
    results.push({
      name: `${exercise.slug}: its suite grades both levels through @impl`,
      ok:
        suite.includes(`@impl/${exercise.slug}/${exercise.slug}.ts`) &&
        suite.includes("describe('core'") &&
        suite.includes("describe('staff'"),
      problem: `${rel(paths.suite)} must import '@impl/${exercise.slug}/${exercise.slug}.ts' and have describe('core') and describe('staff') blocks.`,
    });
  }
  for (const [dir, files] of [
    [EXERCISES_DIR, ['README.md']],
    [SOLUTIONS_DIR, ['README.md']],
  ] as const) {
    for (const entry of (dir === EXERCISES_DIR && trackedFiles(dir)) || fs.readdirSync(dir)) {
      const stray = !slugs.has(entry);
      results.push({
        name: `${rel(dir)}/${entry} belongs to an exercise`,
        ok: !stray,
        problem: `${rel(dir)}/${entry} has no metadata record; add content/exercises/${entry}.json or remove it.`,
      });
      if (stray) continue;
      // A learner may add files of their own beside the exercise: only the shipped ones count.
      const shipped = dir === EXERCISES_DIR ? trackedFiles(path.join(dir, entry)) : null;
      for (const file of shipped ?? fs.readdirSync(path.join(dir, entry))) {
        const expected = file === `${entry}.ts` || (files as readonly string[]).includes(file);
        results.push({
          name: `${rel(dir)}/${entry}/${file} is expected`,
          ok: expected,
          problem: `Stray file ${rel(dir)}/${entry}/${file}: an exercise folder holds ${entry}.ts and README.md only.`,
        });
      }
    }
  }
  for (const file of fs.readdirSync(GRADED_DIR)) {
    const slug = file.replace(/\.test\.ts$/, '');
    results.push({
      name: `test/graded/${file} belongs to an exercise`,
      ok: slugs.has(slug),
      problem: `test/graded/${file} has no metadata record content/exercises/${slug}.json.`,
    });
  }
  // The build refuses these too, but a maintainer working on one exercise runs this check first.
  const problems = checkCrossReferences(loadCourse().references);
  results.push({
    name: 'lessons, exercises and quiz questions link to each other both ways',
    ok: problems.length === 0,
    problem: formatProblems(problems),
  });
  return results;
}

/** The files git tracks directly in `dir`, or null without git (a zip download). */
function trackedFiles(dir: string): string[] | null {
  try {
    const out = execFileSync('git', ['ls-files', '--', '.'], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return [
      ...new Set(
        out
          .split('\n')
          .filter(Boolean)
          .map((file) => file.split('/')[0]!),
      ),
    ];
  } catch {
    return null;
  }
}

/**
 * The starting files as shipped, in a folder laid out like exercises/, for the check that every
 * stub fails: a learner's solved copy in exercises/ would pass. Exercises with no shipped copy
 * are left out (checkLayout reports them).
 */
function pristineStubs(slugs: string[]): { root: string; slugs: string[] } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-stubs-'));
  const found: string[] = [];
  for (const slug of slugs) {
    const stub = pristineStub(slug);
    if (stub === null) continue;
    fs.mkdirSync(path.join(root, slug), { recursive: true });
    fs.writeFileSync(exercisePaths(slug, root).source, stub);
    found.push(slug);
  }
  return { root, slugs: found };
}

/** Every solution passes its suite (on the mock, a real Redis and a Redis Cluster when given); every stub fails it. */
export async function checkGrading(
  redisUrl?: string,
  slugs = loadExercises().map((e) => e.slug),
  clusterUrl?: string,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const modes: Array<[string, RedisOptions]> = [
    ['the mock', {}],
    // What a learner without a cluster gets with --cluster-rules: the reference must pass it too.
    ['the mock with cluster rules', { clusterRules: true }],
    ...(redisUrl ? [['a real Redis', { redisUrl }] as [string, RedisOptions]] : []),
    ...(clusterUrl ? [['a Redis Cluster', { redisUrl: clusterUrl, cluster: true }] as [string, RedisOptions]] : []),
  ];
  for (const [where, target] of modes) {
    const verdicts = await grade({ slugs, implRoot: SOLUTIONS_DIR, ...target });
    for (const verdict of verdicts) {
      const failing = verdict.tests
        .filter((t) => t.status === 'fail')
        .map((t) => `  ✘ ${t.name}\n    ${t.message ?? ''}`);
      results.push({
        name: `${verdict.slug}: the solution passes on ${where}`,
        ok: verdict.status === 'pass',
        problem: [verdict.message, ...failing].filter(Boolean).join('\n'),
      });
    }
  }
  const pristine = pristineStubs(slugs);
  const stubs = await grade({ slugs: pristine.slugs, implRoot: pristine.root }).finally(() =>
    fs.rmSync(pristine.root, { recursive: true, force: true }),
  );
  for (const verdict of stubs) {
    const passing = verdict.tests.filter((t) => t.status === 'pass').length;
    results.push({
      name: `${verdict.slug}: the stub fails its suite`,
      ok: verdict.status === 'fail' && verdict.tests.some((t) => t.level === 'core' && t.status === 'fail'),
      problem: `The stub should fail (status was ${verdict.status}, ${passing} test(s) passing). ${verdict.message ?? ''}`,
    });
  }
  return results;
}

export function printResults(results: CheckResult[]) {
  for (const result of results.filter((r) => !r.ok))
    console.log(`✘ ${result.name}\n  ${result.problem?.replace(/\n/g, '\n  ')}`);
  const passed = results.filter((r) => r.ok).length;
  console.log(`dev check: ${passed} passed, ${results.length - passed} failed`);
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    options: { redis: { type: 'string' }, cluster: { type: 'string' }, seed: { type: 'string' } },
    allowPositionals: true,
  });
  const redisUrl = values.redis ?? process.env.REDIS_URL;
  // `npm run check -- <slug>…` grades only those exercises (the layout check stays whole).
  const all = loadExercises().map((e) => e.slug);
  const unknown = positionals.filter((slug) => !all.includes(slug));
  if (unknown.length) {
    console.error(`No exercise named ${unknown.join(', ')}. Exercises: ${all.join(', ')}.`);
    process.exit(2);
  }
  const slugs = positionals.length ? positionals : all;
  const corpus = await checkCorpus(slugs, redisUrl, values.seed ? Number(values.seed) : undefined);
  // --cluster URL: the solutions on an existing cluster too (the gate starts its own).
  const results = [...checkLayout(), ...(await checkGrading(redisUrl, slugs, values.cluster)), ...corpus.results];
  printResults(results);
  console.log(corpusScore(corpus));
  process.exitCode = results.every((r) => r.ok) ? 0 : 1;
}

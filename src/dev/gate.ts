/**
 * `npm test`: the one gate CI runs. Format and lint (Biome), type check, the project's own tests, the dev check (every
 * solution passes on the mock and on a real Redis, every stub fails), and the site tests.
 * It starts its own throwaway redis-server on a loopback port, so it never touches a server
 * that holds data. With CI=true a missing redis-server is a failure, not a skip.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../course/paths.ts';
import { checkGrading, checkLayout, printResults } from './check.ts';
import { checkCorpus, corpusScore } from './corpus.ts';
import { loadExercises } from '../course/catalog.ts';
import { startThrowawayRedis } from './redis-server.ts';
import { startThrowawayCluster, type ThrowawayCluster } from '../lab/redis-cluster.ts';

const node = process.execPath;
let passed = 0;
let failed = 0;

function step(name: string) {
  console.log(`\n── ${name} ${'─'.repeat(Math.max(0, 70 - name.length))}`);
}

function runVitest(project: string, env: NodeJS.ProcessEnv = {}) {
  const report = path.join(ROOT, '.lab', `gate-${project}.json`);
  fs.mkdirSync(path.dirname(report), { recursive: true });
  fs.rmSync(report, { force: true });
  const result = spawnSync(
    node,
    [
      path.join(ROOT, 'node_modules/vitest/vitest.mjs'),
      'run',
      '--project',
      project,
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
    ],
    {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, ...env },
    },
  );
  try {
    const json = JSON.parse(fs.readFileSync(report, 'utf8')) as {
      numPassedTests: number;
      numFailedTests: number;
      numTotalTestSuites: number;
    };
    passed += json.numPassedTests;
    failed += json.numFailedTests + (result.status !== 0 && json.numFailedTests === 0 ? 1 : 0);
  } catch {
    failed += 1;
    console.log(`✘ vitest project "${project}" produced no report (exit ${result.status}).`);
  }
}

step('format and lint (Biome; fix with npx biome check --write .)');
const biome = spawnSync(node, [path.join(ROOT, 'node_modules/@biomejs/biome/bin/biome'), 'ci', '--colors=off', '.'], {
  cwd: ROOT,
  stdio: 'inherit',
});
if (biome.status === 0) passed++, console.log('format and lint: ok');
else failed++;

step('type check');
const tsc = spawnSync(node, [path.join(ROOT, 'node_modules/typescript7/bin/tsc'), '-p', 'tsconfig.json'], {
  cwd: ROOT,
  stdio: 'inherit',
});
if (tsc.status === 0) passed++, console.log('types: ok');
else failed++;

step('type check of the site (astro check)');
const astroCheck = spawnSync(
  node,
  [path.join(ROOT, 'node_modules/astro/bin/astro.mjs'), 'check', '--tsconfig', 'tsconfig.site.json'],
  {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' },
  },
);
if (astroCheck.status === 0) passed++, console.log('site types: ok');
else failed++;

const redis = await startThrowawayRedis();
let cluster: ThrowawayCluster | undefined;
try {
  step('real Redis');
  if (redis) console.log(`redis-server started at ${redis.url} for this run`), passed++;
  else if (process.env.CI)
    console.log('✘ redis-server is not installed: CI must grade against a real Redis (.ci/run installs it).'), failed++;
  else console.log('redis-server not found: real-Redis checks skipped (install redis-server to run them).');

  step('real Redis Cluster (3 primaries)');
  if (redis)
    cluster = await startThrowawayCluster().catch((error: Error) => {
      console.log(`✘ ${error.message}`);
      failed++;
      return undefined;
    });
  if (cluster) console.log(`Redis Cluster started at ${cluster.url} for this run`), passed++;
  else if (!redis) console.log('redis-server not found: cluster checks skipped.');

  step('project tests (runner, kit, mock fidelity, content)');
  runVitest('self', {
    ...(redis && { REDIS_URL: redis.url }),
    ...(cluster && { REDIS_CLUSTER: cluster.url }),
  });

  step('dev check: layout, solutions pass (mock, cluster rules, Redis, Redis Cluster), stubs fail');
  const results = [...checkLayout(), ...(await checkGrading(redis?.url, undefined, cluster?.url))];
  printResults(results);
  passed += results.filter((r) => r.ok).length;
  failed += results.filter((r) => !r.ok).length;

  step('mutation corpus: every mutant caught and named, every correct variant passes');
  const corpus = await checkCorpus(
    loadExercises().map((e) => e.slug),
    redis?.url,
  );
  printResults(corpus.results);
  console.log(corpusScore(corpus));
  passed += corpus.results.filter((r) => r.ok).length;
  failed += corpus.results.filter((r) => !r.ok).length;

  step('site: build, links, browser');
  runVitest('site');
} finally {
  redis?.stop();
  await cluster?.stop();
}

console.log(`\n${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;

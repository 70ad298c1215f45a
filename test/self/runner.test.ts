// The runner turns every kind of broken learner code into a readable verdict, the same one in
// grade and in watch, within a time limit, from any folder, leaving no process and no key.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, test } from 'vitest';
import { loadExercises } from '../../src/course/catalog.ts';
import { ROOT, SOLUTIONS_DIR } from '../../src/course/paths.ts';
import { formatVerdict, progressBar } from '../../src/lab/format.ts';
import { grade } from '../../src/lab/grade.ts';
import { hostEntry } from '../../src/lab/host-entry.ts';
import { captureOutput, describeError } from '../../src/lab/report.ts';
import { decideVerdict, dedupe, verdictSummary, type ExerciseVerdict } from '../../src/lab/verdict.ts';
import { startWatch } from '../../src/lab/watch.ts';

const fixtures = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-runner-'));
afterAll(() => fs.rmSync(fixtures, { recursive: true, force: true }));

const exercises = loadExercises();
const cacheAside = exercises.find((e) => e.slug === 'cache-aside')!;
const reference = fs.readFileSync(path.join(SOLUTIONS_DIR, 'cache-aside', 'cache-aside.ts'), 'utf8');
const INVALIDATE = 'async invalidate(id: string): Promise<void> {';
const inInvalidate = (code: string) => (source: string) => source.replace(INVALIDATE, `${INVALIDATE}\n    ${code}`);

/** A folder outside the project laid out like exercises/, with cache-aside.ts rewritten by `edit`. */
function folder(name: string, edit: (source: string) => string): string {
  const dir = path.join(fixtures, name);
  fs.mkdirSync(path.join(dir, 'cache-aside'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'cache-aside', 'cache-aside.ts'), edit(reference));
  return dir;
}

const gradeOne = async (implRoot: string, suiteTimeLimitMs?: number) =>
  (await grade({ slugs: ['cache-aside'], implRoot, ...(suiteTimeLimitMs && { suiteTimeLimitMs }) }))[0]!;

/** The first verdict watch mode gives for a folder. */
function watchOnce(implRoot: string, suiteTimeLimitMs?: number): Promise<ExerciseVerdict> {
  return new Promise((resolve) => {
    const handle = startWatch(cacheAside, { implRoot, ...(suiteTimeLimitMs && { suiteTimeLimitMs }) }, (verdict) => {
      handle.stop();
      resolve(verdict);
    });
  });
}

/** A verdict without its timings and random test data, which differ from run to run. */
const comparable = (verdict: ExerciseVerdict) => ({
  status: verdict.status,
  message: verdict.message?.replace(/\d+\.\d s/g, '<t> s'),
  summary: verdictSummary(verdict).replace(/\d+\.\d s/g, '<t> s'),
  tests: verdict.tests.map(({ name, level, status }) => ({ name, level, status })),
});

const CASES = {
  'a passing solution': { edit: (s: string) => s, status: 'pass' },
  'a failing test': { edit: inInvalidate('return;'), status: 'fail' },
  'a type error': { edit: inInvalidate('const wrong: number = id;\n    void wrong;'), status: 'fail' },
  'an unhandled rejection': {
    edit: inInvalidate("void Promise.reject(new Error('forgotten promise'));"),
    status: 'error',
  },
  'a syntax error': {
    edit: (s: string) => s.replace('async get(id: string)', 'async get(id: string {'),
    status: 'error',
  },
  'a busy loop': { edit: inInvalidate('for (;;) await this.options.redis.get(id);'), status: 'error' },
} as const;

describe('one verdict everywhere', () => {
  for (const [name, { edit, status }] of Object.entries(CASES)) {
    test(`grade, watch, list and --json agree on ${name}`, async () => {
      const dir = folder(name.replace(/\W+/g, '-'), edit);

      const graded = await gradeOne(dir);
      const watched = await watchOnce(dir);

      expect(graded.status, graded.message).toBe(status);
      expect(comparable(watched), 'watch must give the verdict grade gives').toEqual(comparable(graded));
      expect(JSON.parse(JSON.stringify(graded)), '--json prints the verdict as it is').toEqual(graded);
    });
  }
});

describe('watch after a hang', () => {
  test('the save that fixes a busy loop is graded in normal time, with no stale error first', async () => {
    const dir = folder('watch-fix', CASES['a busy loop'].edit);
    const file = path.join(dir, 'cache-aside', 'cache-aside.ts');
    const verdicts: Array<{ verdict: ExerciseVerdict; at: number }> = [];
    let savedAt = 0;

    await new Promise<void>((resolve) => {
      const handle = startWatch(cacheAside, { implRoot: dir }, (verdict) => {
        verdicts.push({ verdict, at: performance.now() });
        if (verdicts.length === 1) {
          savedAt = performance.now();
          fs.writeFileSync(file, reference);
        } else {
          handle.stop();
          resolve();
        }
      });
    });

    expect(verdicts[0]!.verdict.message).toMatch(/never let the event loop turn/);
    expect(verdicts[1]!.verdict.status, 'the fixed file passes at once').toBe('pass');
    expect(verdicts[1]!.at - savedAt, 'the fix is graded by a process warmed after the kill').toBeLessThan(5_000);
  });
});

describe('grading broken code', () => {
  test('a syntax error is an error verdict that quotes the compiler and names the file', async () => {
    const verdict = await gradeOne(folder('syntax', CASES['a syntax error'].edit));

    expect(verdict.status).toBe('error');
    expect(verdict.message).toMatch(/cache-aside\.ts/);
  });

  test('a type error fails the exercise even when the tests pass, naming the line', async () => {
    const verdict = await gradeOne(folder('types', CASES['a type error'].edit));

    expect(verdict.tests.every((t) => t.status === 'pass')).toBe(true);
    expect(verdict.status).toBe('fail');
    expect(verdict.message).toMatch(/Type errors:\n.*cache-aside\.ts:\d+:\d+ TS2322/);
  });

  test('a busy loop is stopped within seconds, named, and told apart from a stuck promise', async () => {
    const started = Date.now();
    const verdict = await gradeOne(folder('loop', CASES['a busy loop'].edit), 20_000);

    expect(Date.now() - started, 'a starved event loop is detected by its heartbeat, not at the limit').toBeLessThan(
      10_000,
    );
    expect(verdict.status).toBe('error');
    expect(verdict.message).toMatch(/^Stopped after \d+\.\d s: "core > [^"]+" never let the event loop turn/);
    expect(verdict.tests.at(-1)).toMatchObject({
      status: 'fail',
      message: 'This test was running when the suite was stopped (see above).',
    });
  });

  test('code that grows without bound is stopped within seconds and blamed on memory, not on a loop', async () => {
    const started = Date.now();
    // A few megabytes kept per call, between awaits that let timers run: a leak, not a busy loop.
    const grow = '((globalThis as { hoard?: string[][] }).hoard ??= []).push(Array(2 ** 23).fill(id));';
    const verdict = await gradeOne(folder('memory', inInvalidate(grow)), 30_000);

    expect(Date.now() - started, 'a thread near its heap limit is noticed, not waited out').toBeLessThan(20_000);
    expect(verdict.status).toBe('error');
    expect(verdict.message).toMatch(
      /^Stopped after \d+\.\d s: "core > [^"]+" ran out of memory \(a test thread may use \d+ MB/,
    );
    expect(verdict.tests.at(-1)).toMatchObject({ status: 'fail' });
  });

  test('a promise that never settles is named at the limit, and not blamed on a loop', async () => {
    const verdict = await gradeOne(folder('stuck', inInvalidate('await new Promise(() => {});')), 8_000);

    expect(verdict.status).toBe('error');
    expect(verdict.message).toMatch(
      /^Stopped at the suite's time limit \(8 s\): "(core|staff) > [^"]+" was still running\. Timers were still firing/,
    );
    expect(
      verdict.tests.some((t) => t.message?.startsWith('Timed out after 5 s: a promise in your code never settled')),
    ).toBe(true);
  });

  test('an unhandled rejection is an error verdict, printed once with its count', async () => {
    const verdict = await gradeOne(folder('unhandled', CASES['an unhandled rejection'].edit));

    expect(verdict.status).toBe('error');
    expect(verdict.message!.match(/forgotten promise/g)).toHaveLength(1);
    expect(verdict.message).toMatch(/\(raised \d+ times\)/);
  });

  test('a missing file is an error verdict naming the file', async () => {
    fs.mkdirSync(path.join(fixtures, 'empty'), { recursive: true });

    const verdict = await gradeOne(path.join(fixtures, 'empty'));

    expect(verdict).toMatchObject({ status: 'error', tests: [] });
    expect(verdict.message).toMatch(/No file at .*cache-aside\.ts/);
  });

  test("the learner's console output is shown under the test that printed it", async () => {
    const verdict = await gradeOne(
      folder('prints', inInvalidate("console.log('invalidating', id, [1, 2]);\n    return;")),
    );

    const failing = verdict.tests.find((t) => t.status === 'fail' && t.output)!;
    expect(failing.output).toMatch(/^invalidating p-[0-9a-f]+ \[ 1, 2 \]\n/);
    expect(formatVerdict(verdict, cacheAside)).toContain('      Your code printed:\n      │ invalidating p-');
  });

  test('failure messages show the values that differ in full, never […(3)]', async () => {
    const verdict = await gradeOne(folder('stale', inInvalidate('return;')));

    const message = verdict.tests.find((t) => t.status === 'fail')!.message!;
    expect(message).not.toMatch(/…\(\d+\)|\[ Array\(\d+\) \]|\[Object\]/);
    expect(message).toMatch(/tags: \[ '[a-z]+', '[a-z]+'(, '[a-z]+')* \]/);
    expect(message).toContain('- Expected\n+ Received');
  });
});

describe('reproducible test data', () => {
  test('a failing run prints its seed, and --seed repeats its data exactly', async () => {
    const dir = folder('seeded', inInvalidate("console.log('invalidating', id);\n    return;"));
    const printed = (verdict: ExerciseVerdict) => verdict.tests.map((t) => `${t.name}: ${t.output ?? ''}`).join('\n');

    const first = await gradeOne(dir);
    const again = (await grade({ slugs: ['cache-aside'], implRoot: dir, seed: first.seed! }))[0]!;
    const other = (await grade({ slugs: ['cache-aside'], implRoot: dir, seed: first.seed! + 1 }))[0]!;

    expect(formatVerdict(first, cacheAside)).toContain(
      `Test data seed ${first.seed}: npm run grade -- cache-aside --seed ${first.seed} repeats this run.`,
    );
    expect(printed(first)).toMatch(/invalidating p-[0-9a-f]{8}/);
    expect(printed(again), 'the same seed must give every test the same ids').toBe(printed(first));
    expect(printed(other), 'another seed must give other ids').not.toBe(printed(first));
  });
});

describe('grading any folder anywhere', () => {
  const slugs = exercises.map((e) => e.slug);
  const copySolutions = (dir: string) => {
    for (const slug of slugs) fs.cpSync(path.join(SOLUTIONS_DIR, slug), path.join(dir, slug), { recursive: true });
    return dir;
  };

  test('every reference solution passes when copied to a fresh folder in the OS temp dir', async () => {
    const dir = copySolutions(fs.mkdtempSync(path.join(os.tmpdir(), 'lab-student-')));

    const verdicts = await grade({ slugs, implRoot: dir });
    fs.rmSync(dir, { recursive: true, force: true });

    for (const verdict of verdicts) expect(verdict.status, `${verdict.slug}: ${verdict.message}`).toBe('pass');
  });

  test('…and in one with its own CommonJS package.json', async () => {
    const dir = copySolutions(fs.mkdtempSync(path.join(os.tmpdir(), 'lab-student-cjs-')));
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'student', type: 'commonjs' }));
    for (const slug of slugs) fs.writeFileSync(path.join(dir, slug, 'package.json'), JSON.stringify({ name: slug }));

    const verdicts = await grade({ slugs, implRoot: dir });
    fs.rmSync(dir, { recursive: true, force: true });

    for (const verdict of verdicts) expect(verdict.status, `${verdict.slug}: ${verdict.message}`).toBe('pass');
  });
});

describe('the test process', () => {
  test('runs from plain JavaScript, so Node loads no TypeScript stripper into it', () => {
    const entry = hostEntry();
    const dir = path.dirname(entry);
    const local = (file: string) =>
      [...fs.readFileSync(path.join(dir, file), 'utf8').matchAll(/from\s+['"](\.[^'"]+)['"]/g)].map((m) => m[1]!);

    expect(path.relative(path.join(ROOT, 'node_modules', '.cache'), entry)).toMatch(
      /^system-design-lab\/host-\w+\/suite-host\.mjs$/,
    );
    expect(fs.readdirSync(dir).sort()).toEqual(['heartbeat.mjs', 'report.mjs', 'suite-host.mjs']);
    for (const file of fs.readdirSync(dir))
      expect(
        local(file).every((specifier) => /^\.\/[\w-]+\.mjs$/.test(specifier)),
        `${file} imports only its siblings`,
      ).toBe(true);
  });
});

describe('nothing is left behind', () => {
  const hostsOf = (parent: number) =>
    fs
      .readdirSync('/proc')
      .filter((pid) => /^\d+$/.test(pid))
      .filter((pid) => {
        try {
          const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          const ppid = /PPid:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
          return /suite-host\.m?[jt]s/.test(cmdline) && Number(ppid) === parent;
        } catch {
          return false;
        }
      });

  for (const signal of ['SIGHUP', 'SIGINT', 'SIGKILL'] as const) {
    test(`watch's test process ends when watch gets ${signal}`, async () => {
      const dir = folder(`exit-${signal}`, (s) => s);
      const watcher = spawn(
        process.execPath,
        [path.join(ROOT, 'src/lab/cli.ts'), 'watch', 'cache-aside', '--from', dir],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await new Promise<void>((resolve) =>
        watcher.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('PASS') && resolve()),
      );
      expect(hostsOf(watcher.pid!), 'watch runs one test process').toHaveLength(1);
      const host = hostsOf(watcher.pid!)[0]!;

      watcher.kill(signal);
      await new Promise((resolve) => watcher.on('exit', resolve));
      const deadline = Date.now() + 5_000;
      while (fs.existsSync(`/proc/${host}`) && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));

      const state = fs.existsSync(`/proc/${host}/status`)
        ? /State:\s+(\w)/.exec(fs.readFileSync(`/proc/${host}/status`, 'utf8'))?.[1]
        : 'gone';
      expect(state === 'gone' || state === 'Z', `the test process ${host} outlived watch`).toBe(true);
    });
  }

  test.runIf(process.env.REDIS_URL)('a killed suite on a real Redis leaves none of its keys', async () => {
    const marker = `leftover-${process.pid}`;
    const dir = folder(
      'leftover',
      inInvalidate(`await this.options.redis.set('${marker}', '1');\n    for (;;) await Promise.resolve();`),
    );

    const [verdict] = await grade({ slugs: ['cache-aside'], implRoot: dir, redisUrl: process.env.REDIS_URL! });

    expect(verdict!.message).toMatch(/never let the event loop turn/);
    const admin = new Redis(process.env.REDIS_URL!);
    const [, left] = await admin.scan('0', 'MATCH', `lab:*${marker}`, 'COUNT', 100_000);
    admin.disconnect();
    expect(left, 'the runner removes the run key prefix after killing the suite').toEqual([]);
  });
});

describe('verdict output', () => {
  test('the progress bar fills in proportion', () => {
    expect(progressBar(2, 5, 10)).toBe('[████░░░░░░]');
    expect(progressBar(0, 0, 4)).toBe('[░░░░]');
  });

  test('a failing verdict shows the first failing test and says how to see the rest', () => {
    const text = formatVerdict(
      {
        slug: 'cache-aside',
        status: 'fail',
        tests: [
          { name: 'core > a', level: 'core', status: 'pass' },
          { name: 'core > b', level: 'core', status: 'fail', message: 'why b matters' },
          { name: 'staff > c', level: 'staff', status: 'fail', message: 'why c matters' },
        ],
      },
      cacheAside,
    );

    expect(text).toContain('✘ core > b\n      why b matters');
    expect(text).toContain('…and 1 more failing (npm run grade -- cache-aside --all shows them).');
    expect(text).not.toContain('core > a');
  });

  test('--verbose shows every test', () => {
    const text = formatVerdict(
      {
        slug: 'cache-aside',
        status: 'fail',
        tests: [
          { name: 'core > a', level: 'core', status: 'pass', output: 'hello\n' },
          { name: 'core > b', level: 'core', status: 'fail', message: 'why b matters' },
        ],
      },
      cacheAside,
      { verbose: true },
    );

    expect(text).toContain(
      '   ✔ core > a\n      Your code printed:\n      │ hello\n   ✘ core > b\n      why b matters',
    );
  });

  test('an assertion error reads as its message, the diff and the learner line', () => {
    const text = describeError({
      message: "feed page: expected [ 'p3', 'p2', 'p1' ] to deeply equal [ 'p3', 'p1', 'p2' ]",
      diff: '- Expected\n+ Received\n\n  [\n    "p3",\n-   "p1",\n    "p2",\n+   "p1",\n  ]',
      stack:
        'AssertionError: feed page\n    at Feed.page (/work/exercises/fanout-feed/fanout-feed.ts:40:7)\n    at test/graded/fanout-feed.test.ts:10:3',
    });

    expect(text).toMatchInlineSnapshot(`
      "feed page: expected [ 'p3', 'p2', 'p1' ] to deeply equal [ 'p3', 'p1', 'p2' ]
      - Expected
      + Received

        [
          "p3",
      -   "p1",
          "p2",
      +   "p1",
        ]
          at Feed.page (/work/exercises/fanout-feed/fanout-feed.ts:40:7)"
    `);
  });

  test('huge values are cut with a note, not elided', () => {
    const text = describeError({
      message: `expected ${'x'.repeat(5_000)}`,
      diff: Array.from({ length: 100 }, (_, i) => `+ ${i}`).join('\n'),
    });

    expect(text.split('\n')[0]).toMatch(/^expected x{1991}… \(3009 more characters\)$/);
    expect(text.split('\n').slice(1, 3)).toEqual(['+ 0', '+ 1']);
    expect(text.split('\n').at(-1)).toBe('… (60 more lines of the diff)');
  });

  test('console output is capped with a count of what was cut', () => {
    const captured = captureOutput(
      captureOutput({ text: '', cut: 0 }, 'a'.repeat(1_500)),
      `\u001b[33m${'b'.repeat(1_000)}\u001b[39m`,
    );

    expect(captured.text).toBe(`${'a'.repeat(1_500)}${'b'.repeat(500)}`);
    expect(captured.cut).toBe(500);
    const verdict = decideVerdict({
      slug: 's',
      module: { file: 'x', errors: [], tests: [{ name: 'core > t', status: 'pass', output: 'hi', outputCut: 500 }] },
    });
    expect(verdict.tests[0]!.output).toBe('hi\n… (500 more characters of output)');
  });

  test('one error raised many times is one line with a count', () => {
    expect(dedupe(['boom', 'boom', 'other', 'boom'])).toEqual(['boom\n  (raised 3 times)', 'other']);
  });
});

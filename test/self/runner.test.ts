// The runner turns every kind of broken learner code into a readable verdict, within a time
// limit, without breaking the grading of other exercises.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ROOT, SOLUTIONS_DIR } from '../../src/course/paths.ts';
import { grade } from '../../src/lab/grade.ts';
import { formatVerdict, progressBar } from '../../src/lab/format.ts';
import { loadExercises } from '../../src/course/catalog.ts';

const fixtures = path.join(ROOT, '.lab', `runner-fixtures-${process.pid}`);
afterAll(() => fs.rmSync(fixtures, { recursive: true, force: true }));

const reference = fs.readFileSync(path.join(SOLUTIONS_DIR, 'cache-aside', 'cache-aside.ts'), 'utf8');

/** A folder laid out like exercises/ with cache-aside.ts rewritten by `edit`. */
function folder(name: string, edit: (source: string) => string): string {
  const dir = path.join(fixtures, name);
  fs.mkdirSync(path.join(dir, 'cache-aside'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'cache-aside', 'cache-aside.ts'), edit(reference));
  return dir;
}

const gradeOne = async (implRoot: string, suiteTimeLimitMs?: number) =>
  (await grade({ slugs: ['cache-aside'], implRoot, ...(suiteTimeLimitMs && { suiteTimeLimitMs }) }))[0]!;

describe('grading broken code', () => {
  test('a syntax error is an error verdict that quotes the compiler', async () => {
    const dir = folder('syntax', (s) => s.replace('async get(id: string)', 'async get(id: string {'));

    const verdict = await gradeOne(dir);

    expect(verdict.status).toBe('error');
    expect(verdict.message).toMatch(/cache-aside\.ts/);
  });

  test('a type error fails the exercise even when the tests pass', async () => {
    const dir = folder('types', (s) => s.replace('async invalidate(id: string): Promise<void> {', 'async invalidate(id: string): Promise<void> {\n    const wrong: number = id;\n    void wrong;'));

    const verdict = await gradeOne(dir);

    expect(verdict.status).toBe('fail');
    expect(verdict.message).toMatch(/Type errors:\n.*cache-aside\.ts:\d+:\d+ TS2322/);
  });

  test('an infinite loop is stopped at the time limit with a message that says why', async () => {
    const dir = folder('loop', (s) => s.replace('async invalidate(id: string): Promise<void> {', 'async invalidate(id: string): Promise<void> {\n    for (;;) await this.options.redis.get(id);'));

    const started = Date.now();
    const verdict = await gradeOne(dir, 8_000);

    expect(Date.now() - started, 'the runner must stop a hung suite near its limit').toBeLessThan(30_000);
    expect(verdict.status).toBe('error');
    expect(verdict.message).toMatchInlineSnapshot(`"The suite did not finish within 8 s and was stopped. Look for a loop that never awaits anything slower than a Redis reply (the mock Redis answers instantly, so such a loop never lets timers run), or a retry loop with no limit."`);
  });

  test('an unhandled rejection is an error verdict', async () => {
    const dir = folder('unhandled', (s) => s.replace('async invalidate(id: string): Promise<void> {', "async invalidate(id: string): Promise<void> {\n    void Promise.reject(new Error('forgotten promise'));"));

    const verdict = await gradeOne(dir);

    expect(verdict.status).toBe('error');
    expect(verdict.message).toContain('forgotten promise');
  });

  test('a missing file is an error verdict naming the file', async () => {
    fs.mkdirSync(path.join(fixtures, 'empty'), { recursive: true });

    const verdict = await gradeOne(path.join(fixtures, 'empty'));

    expect(verdict).toMatchObject({ status: 'error', tests: [] });
    expect(verdict.message).toMatch(/No file at .*cache-aside\.ts/);
  });
});

describe('verdict output', () => {
  test('the progress bar fills in proportion', () => {
    expect(progressBar(2, 5, 10)).toBe('[████░░░░░░]');
    expect(progressBar(0, 0, 4)).toBe('[░░░░]');
  });

  test('a failing verdict shows the first failing test and its message', () => {
    const exercise = loadExercises().find((e) => e.slug === 'cache-aside')!;

    const text = formatVerdict({ slug: 'cache-aside', status: 'fail', tests: [
      { name: 'core > a', level: 'core', status: 'pass' },
      { name: 'core > b', level: 'core', status: 'fail', message: 'why b matters' },
      { name: 'staff > c', level: 'staff', status: 'fail', message: 'why c matters' },
    ] }, exercise);

    expect(text).toContain('✘ core > b\n      why b matters');
    expect(text).toContain('…and 1 more failing');
  });
});

// Watch takes single keys for what a learner does next: h hint, r run again, l list, n next
// exercise, q quit, shown under every verdict.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, expect, test, vi } from 'vitest';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-keys-'));
// Before the runner's modules load: keep the learner's real progress out of this test.
process.env.LAB_STATE_FILE = path.join(scratch, 'state.json');
const { loadExercises } = await import('../../src/course/catalog.ts');
const { SOLUTIONS_DIR } = await import('../../src/course/paths.ts');
const { watch } = await import('../../src/lab/watch.ts');
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

const exercises = loadExercises();
const [first, second] = [
  exercises.find((e) => e.slug === 'cache-aside')!,
  exercises.find((e) => e.slug === 'write-behind')!,
];
const implRoot = path.join(scratch, 'work');
for (const e of [first, second])
  fs.cpSync(path.join(SOLUTIONS_DIR, e.slug), path.join(implRoot, e.slug), { recursive: true });

async function until(condition: () => boolean, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return condition();
}

test('in a terminal, watch answers h, r, l, n and q, and says so under each verdict', { timeout: 90_000 }, async () => {
  const printed: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void printed.push(args.join(' ')));
  vi.spyOn(console, 'clear').mockImplementation(() => {});
  const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => {} });
  let exited = false;
  const out = () => printed.join('\n');
  const verdicts = () => printed.filter((line) => line.includes(': PASS')).length;

  const session = watch(first, { implRoot }, { exercises: [first, second], input, exit: () => (exited = true) });
  try {
    expect(await until(() => verdicts() === 1), `no verdict came:\n${out()}`).toBe(true);
    expect(out()).toContain('Keys: h next hint · r run again · l list · n next exercise · q quit');

    input.write('h');
    expect(await until(() => out().includes(`Hints for ${first.title} (1 of`)), 'h shows the next hint').toBe(true);
    expect(
      JSON.parse(fs.readFileSync(process.env.LAB_STATE_FILE!, 'utf8')).hintsShown[first.slug],
      'the hint is remembered',
    ).toBe(1);

    input.write('r');
    expect(await until(() => verdicts() === 2), 'r grades again although nothing changed').toBe(true);

    input.write('l');
    expect(await until(() => /· write-behind +not graded yet/.test(out())), `l lists the exercises:\n${out()}`).toBe(
      true,
    );

    input.write('n');
    expect(
      await until(() => out().includes(`${path.join('work', second.slug)}/ — save to re-grade`) && verdicts() === 3),
      `n moves to the next exercise:\n${out()}`,
    ).toBe(true);
    expect(session.exercise.slug).toBe(second.slug);

    input.write('q');
    expect(await until(() => exited, 5_000), 'q quits').toBe(true);
  } finally {
    if (!exited) session.stop();
    vi.restoreAllMocks();
  }
});

import type { Exercise } from '../course/exercise-schema.ts';
import type { ExerciseVerdict, TestVerdict } from './verdict.ts';

export function progressBar(done: number, total: number, width = 20): string {
  const filled = total === 0 ? 0 : Math.round((done / total) * width);
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`;
}

const indent = (text: string, by = '      ') =>
  text
    .split('\n')
    .map((line) => by + line)
    .join('\n');

export interface FormatOptions {
  /** Every failing test, not only the first. */
  all?: boolean | undefined;
  /** Every test, passing ones too, with their output. */
  verbose?: boolean | undefined;
  /** The command that shows the rest, named when failing tests are left out. */
  moreHint?: string | undefined;
}

function formatTest(test: TestVerdict): string[] {
  const lines = [`   ${test.status === 'pass' ? '✔' : '✘'} ${test.name}`];
  if (test.message) lines.push(indent(test.message));
  if (test.output) lines.push('      Your code printed:', indent(test.output.replace(/\n$/, ''), '      │ '));
  return lines;
}

/** A verdict as a learner reads it: the result per level, then what to fix first. */
export function formatVerdict(verdict: ExerciseVerdict, exercise: Exercise, options: FormatOptions = {}): string {
  const lines: string[] = [];
  const mark = verdict.status === 'pass' ? '✔' : '✘';
  lines.push(`${mark} ${exercise.title} (${verdict.slug}): ${verdict.status.toUpperCase()}`);
  for (const level of ['core', 'staff'] as const) {
    const tests = verdict.tests.filter((test) => test.level === level);
    if (!tests.length) continue;
    const passed = tests.filter((test) => test.status === 'pass').length;
    lines.push(
      `   ${level.padEnd(5)} ${progressBar(passed, tests.length, 10)} ${passed}/${tests.length}  ${exercise.levels[level]}`,
    );
  }
  if (verdict.message) lines.push(indent(verdict.message, '   '));
  const failing = verdict.tests.filter((test) => test.status === 'fail');
  const shown = options.verbose ? verdict.tests : options.all ? failing : failing.slice(0, 1);
  for (const test of shown) lines.push(...formatTest(test));
  const hidden = failing.length - shown.filter((test) => test.status === 'fail').length;
  if (hidden > 0)
    lines.push(
      `   …and ${hidden} more failing (${options.moreHint ?? `npm run grade -- ${verdict.slug} --all`} shows them).`,
    );
  if (verdict.status !== 'pass' && verdict.seed !== undefined)
    lines.push(
      `   Test data seed ${verdict.seed}: npm run grade -- ${verdict.slug} --seed ${verdict.seed} repeats this run.`,
    );
  return `${lines.join('\n')}\n`;
}

import type { Exercise } from '../course/exercise-schema.ts';
import type { ExerciseVerdict } from './grade.ts';

export function progressBar(done: number, total: number, width = 20): string {
  const filled = total === 0 ? 0 : Math.round((done / total) * width);
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`;
}

const indent = (text: string, by = '      ') => text.split('\n').map((line) => by + line).join('\n');

/** A verdict as a learner reads it: the result per level, then what to fix first. */
export function formatVerdict(verdict: ExerciseVerdict, exercise: Exercise, options: { all?: boolean } = {}): string {
  const lines: string[] = [];
  const mark = verdict.status === 'pass' ? '✔' : '✘';
  lines.push(`${mark} ${exercise.title} (${verdict.slug}): ${verdict.status.toUpperCase()}`);
  for (const level of ['core', 'staff'] as const) {
    const tests = verdict.tests.filter((test) => test.level === level);
    if (!tests.length) continue;
    const passed = tests.filter((test) => test.status === 'pass').length;
    lines.push(`   ${level.padEnd(5)} ${progressBar(passed, tests.length, 10)} ${passed}/${tests.length}  ${exercise.levels[level]}`);
  }
  if (verdict.message) lines.push(indent(verdict.message, '   '));
  const failing = verdict.tests.filter((test) => test.status === 'fail');
  for (const test of options.all ? failing : failing.slice(0, 1)) {
    lines.push(`   ✘ ${test.name}`);
    if (test.message) lines.push(indent(test.message));
  }
  if (!options.all && failing.length > 1) lines.push(`   …and ${failing.length - 1} more failing (--all shows them).`);
  return `${lines.join('\n')}\n`;
}

import type { Exercise } from '../course/exercise-schema.ts';
import { siteUrl } from './site-url.ts';
import { readState, writeState } from './state.ts';

/** Shows one more hint than last time (they are remembered), with the ones before it. */
export function nextHint(exercise: Exercise): string {
  const state = readState();
  const shown = Math.min((state.hintsShown[exercise.slug] ?? 0) + 1, exercise.hints.length);
  state.hintsShown[exercise.slug] = shown;
  writeState(state);
  const lines = [`Hints for ${exercise.title} (${shown} of ${exercise.hints.length}):`, ''];
  exercise.hints.slice(0, shown).forEach((text, i) => lines.push(`  ${i + 1}. ${text}`, ''));
  if (shown === exercise.hints.length)
    lines.push(`That was the last hint. The lesson: ${siteUrl(`/lessons/${exercise.lesson}/`)}`);
  return lines.join('\n');
}

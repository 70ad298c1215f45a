import { parseQuiz } from '../../course/quiz.ts';
import type { QuizQuestion } from '../../course/quiz-schema.ts';

/**
 * The validated quiz, for pages and components. Vite inlines the JSON at build time, so the
 * bundle never looks for content/quiz/ relative to where it ends up; parseQuiz applies the same
 * checks as loadQuiz (schema, 8/7/7/8, unique ids) with the same messages.
 */
export function loadQuizFromGlob(): QuizQuestion[] {
  const files = import.meta.glob<unknown>('../../../content/quiz/*.json', { eager: true, import: 'default' });
  return parseQuiz(Object.entries(files).map(([file, data]) => ({ file: file.replace(/^(\.\.\/)+/, ''), data })));
}

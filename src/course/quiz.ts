import fs from 'node:fs';
import path from 'node:path';
import { ContentError, parseContent } from './catalog.ts';
import { ROOT } from './paths.ts';
import { QUIZ_SECTIONS, QuizFileSchema, QuizQuestionSchema, type QuizQuestion } from './quiz-schema.ts';

export const QUIZ_DIR = path.join(ROOT, 'content', 'quiz');

/** The raw contents of one quiz file, however it was read (fs here, import.meta.glob in Astro). */
export interface QuizFileInput {
  /** Path of the file, used in error messages; its base name is the section id. */
  file: string;
  data: unknown;
}

function display(file: string): string {
  return path.isAbsolute(file) ? path.relative(process.cwd(), file) : file;
}

/**
 * Validates every quiz file and returns the questions in page order (sections in
 * QUIZ_SECTIONS order, questions in file order). Throws a ContentError naming the file and the
 * question for any broken question, duplicate id, misfiled question or wrong section size.
 */
export function parseQuiz(files: readonly QuizFileInput[]): QuizQuestion[] {
  const bySection = new Map<string, QuizQuestion[]>();
  const seen = new Map<string, string>();
  for (const { file, data } of files) {
    const sectionId = path.basename(file, '.json');
    if (!QUIZ_SECTIONS.some((section) => section.id === sectionId)) {
      throw new ContentError(
        `${display(file)}: quiz files are named after a section (${QUIZ_SECTIONS.map((s) => `${s.id}.json`).join(', ')}).`,
      );
    }
    const raw = parseContent(QuizFileSchema, data, file);
    const questions = raw.map((item, index) => {
      const label = typeof (item as { id?: unknown })?.id === 'string' ? (item as { id: string }).id : `#${index + 1}`;
      let question: QuizQuestion;
      try {
        question = parseContent(QuizQuestionSchema, item, file);
      } catch (error) {
        if (!(error instanceof ContentError)) throw error;
        throw new ContentError(`Question "${label}" in ${error.message}`);
      }
      if (question.section !== sectionId) {
        throw new ContentError(
          `Question "${question.id}" in ${display(file)} has section "${question.section}"; move it to content/quiz/${question.section}.json or fix its section.`,
        );
      }
      const other = seen.get(question.id);
      if (other) {
        throw new ContentError(
          `Question id "${question.id}" is used twice (${display(other)} and ${display(file)}); ids must be unique.`,
        );
      }
      seen.set(question.id, file);
      return question;
    });
    bySection.set(sectionId, questions);
  }
  const ordered: QuizQuestion[] = [];
  for (const section of QUIZ_SECTIONS) {
    const questions = bySection.get(section.id) ?? [];
    if (questions.length !== section.count) {
      throw new ContentError(
        `content/quiz/${section.id}.json holds ${questions.length} questions; the "${section.title}" section needs exactly ${section.count}.`,
      );
    }
    ordered.push(...questions);
  }
  return ordered;
}

/** Reads and validates every `content/quiz/*.json` file; see parseQuiz. */
export function loadQuiz(dir: string = QUIZ_DIR): QuizQuestion[] {
  const files = fs
    .readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => {
      const file = path.join(dir, name);
      let data: unknown;
      try {
        data = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch (error) {
        throw new ContentError(`${display(file)} is not valid JSON: ${(error as Error).message}`);
      }
      return { file, data };
    });
  return parseQuiz(files);
}

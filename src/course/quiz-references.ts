import path from 'node:path';
import type { Course, CourseQuestion, CrossReferenceCheck, Problem } from './course-model.ts';
import { headingIds } from './lessons.ts';
import { ROOT } from './paths.ts';

/*
 * The quiz's links, checked in both directions: each question points at a lesson heading and
 * (optionally) an exercise that exist, and each lesson's and exercise's `quiz` list is exactly
 * the questions that point back at it. Every message starts with the question id, so a broken
 * link names the question that needs fixing. All checks skip while the quiz is not loaded.
 */

function display(file: string): string {
  return path.isAbsolute(file) ? path.relative(ROOT, file) : file;
}

function problem(file: string, message: string): Problem {
  return { file: display(file), message };
}

const quote = (items: Iterable<string>) => [...items].map((item) => `"${item}"`).join(', ');

/** A question's `lesson` names a lesson, and its `anchor` is a heading id in that lesson. */
export const quizLessonAnchorsResolve: CrossReferenceCheck = (course) => {
  if (!course.quiz) return [];
  const lessons = new Map(course.lessons.map((lesson) => [lesson.slug, lesson]));
  const anchorsBySlug = new Map<string, Set<string>>();
  const problems: Problem[] = [];
  for (const question of course.quiz) {
    const lesson = lessons.get(question.lesson);
    if (!lesson) {
      problems.push(
        problem(
          question.file,
          `question "${question.id}" links to lesson "${question.lesson}", but there is no content/lessons/${question.lesson}.mdx. Fix \`lesson\` or write the lesson.`,
        ),
      );
      continue;
    }
    let anchors = anchorsBySlug.get(lesson.slug);
    if (!anchors) {
      anchors = headingIds(lesson.body);
      anchorsBySlug.set(lesson.slug, anchors);
    }
    if (!anchors.has(question.anchor)) {
      problems.push(
        problem(
          question.file,
          `question "${question.id}" links to #${question.anchor} in ${display(lesson.file)}, but no heading there has that id. Headings: ${quote(anchors)}.`,
        ),
      );
    }
  }
  return problems;
};

/** A question's `exercise`, when set, names an exercise that has a metadata record. */
export const quizExercisesExist: CrossReferenceCheck = (course) => {
  if (!course.quiz) return [];
  const known = new Set(course.exercises.map((exercise) => exercise.slug));
  return course.quiz
    .filter((question) => question.exercise !== undefined && !known.has(question.exercise))
    .map((question) =>
      problem(
        question.file,
        `question "${question.id}" links to exercise "${question.exercise}", but there is no content/exercises/${question.exercise}.json. Fix \`exercise\`, remove it, or add the exercise's metadata.`,
      ),
    );
};

/**
 * Compares a `quiz` list with the questions that point at its owner; reports ids listed twice,
 * ids of questions that point elsewhere, and questions that point here but are not listed.
 */
function compareQuizList(
  owner: { file: string; quiz: readonly string[] },
  ownerLabel: string,
  pointing: readonly CourseQuestion[],
  byId: ReadonlyMap<string, CourseQuestion>,
  target: (question: CourseQuestion) => string | undefined,
): Problem[] {
  const problems: Problem[] = [];
  const listed = new Set<string>();
  for (const id of owner.quiz) {
    if (listed.has(id)) {
      problems.push(problem(owner.file, `\`quiz\` lists "${id}" twice.`));
      continue;
    }
    listed.add(id);
    const question = byId.get(id);
    // Unknown ids are quizIdsExist's to report.
    if (question && !pointing.includes(question)) {
      const elsewhere = target(question);
      problems.push(
        problem(
          owner.file,
          `\`quiz\` lists "${id}", but that question links to ${elsewhere ? `"${elsewhere}"` : `no ${ownerLabel}`}, not here. Remove it from \`quiz\` or change the question's \`${ownerLabel}\`.`,
        ),
      );
    }
  }
  const missing = pointing.filter((question) => !listed.has(question.id));
  if (missing.length > 0) {
    problems.push(
      problem(
        owner.file,
        `question${missing.length === 1 ? '' : 's'} ${quote(missing.map((question) => question.id))} link${missing.length === 1 ? 's' : ''} to this ${ownerLabel}; add ${missing.length === 1 ? 'it' : 'them'} to \`quiz\`.`,
      ),
    );
  }
  return problems;
}

/** Each lesson's `quiz` is exactly the ids of the questions whose `lesson` is that lesson. */
export const lessonQuizMatchesQuestions: CrossReferenceCheck = (course) => {
  const quiz = course.quiz;
  if (!quiz) return [];
  const byId = new Map(quiz.map((question) => [question.id, question]));
  return course.lessons.flatMap((lesson) =>
    compareQuizList(
      lesson,
      'lesson',
      quiz.filter((question) => question.lesson === lesson.slug),
      byId,
      (question) => question.lesson,
    ),
  );
};

/** Each exercise's `quiz` is exactly the ids of the questions whose `exercise` is that exercise. */
export const exerciseQuizMatchesQuestions: CrossReferenceCheck = (course) => {
  const quiz = course.quiz;
  if (!quiz) return [];
  const byId = new Map(quiz.map((question) => [question.id, question]));
  return course.exercises.flatMap((exercise) =>
    compareQuizList(
      exercise,
      'exercise',
      quiz.filter((question) => question.exercise === exercise.slug),
      byId,
      (question) => question.exercise,
    ),
  );
};

/**
 * Every lesson is tested by at least one question: a lesson nobody is quizzed on is a lesson a
 * learner cannot check themselves against, and its `quiz: []` hides that until someone looks.
 */
export const everyLessonIsQuizzed: CrossReferenceCheck = (course) => {
  const quiz = course.quiz;
  if (!quiz) return [];
  const quizzed = new Set(quiz.map((question) => question.lesson));
  return course.lessons
    .filter((lesson) => !quizzed.has(lesson.slug))
    .map((lesson) =>
      problem(
        lesson.file,
        `no quiz question links to lesson "${lesson.slug}". Write at least one question in content/quiz/ whose \`lesson\` is "${lesson.slug}" and whose \`anchor\` is the heading that teaches it.`,
      ),
    );
};

/** The quiz checks, in the order their problems are easiest to fix. */
export const QUIZ_CROSS_REFERENCE_CHECKS: CrossReferenceCheck[] = [
  quizLessonAnchorsResolve,
  quizExercisesExist,
  lessonQuizMatchesQuestions,
  exerciseQuizMatchesQuestions,
  everyLessonIsQuizzed,
];

/** Question id → where it links, for reports and for filling `quiz` lists. */
export function quizLinks(
  course: Pick<Course, 'quiz'>,
): { id: string; lesson: string; anchor: string; exercise?: string | undefined }[] {
  return (course.quiz ?? []).map(({ id, lesson, anchor, exercise }) => ({ id, lesson, anchor, exercise }));
}

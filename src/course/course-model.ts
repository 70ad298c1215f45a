// The shapes the course's cross-reference checks work on, in one module that both
// cross-references.ts and quiz-references.ts import, so neither imports the other's types.

/**
 * The cross-references between lessons, exercises and quiz questions, reduced to what the checks
 * need. Built from disk by `loadCourse` (src/course/course.ts) or by hand in tests.
 */
export interface Course {
  lessons: readonly CourseLesson[];
  exercises: readonly CourseExercise[];
  /** Undefined while the quiz cannot be loaded; quiz ids are then not checked. */
  quiz?: readonly CourseQuestion[] | undefined;
}

export interface CourseLesson {
  slug: string;
  file: string;
  exercises: readonly string[];
  quiz: readonly string[];
  /** MDX body, scanned for links. */
  body: string;
}

export interface CourseExercise {
  slug: string;
  /** The metadata record, content/exercises/<slug>.json. */
  file: string;
  lesson: string;
  quiz: readonly string[];
  /** Markdown shown on the exercise's page (task README, walkthrough), scanned for links. */
  documents: readonly { file: string; body: string }[];
}

export interface CourseQuestion {
  id: string;
  file: string;
  lesson: string;
  anchor: string;
  exercise?: string | undefined;
}

/** One broken reference: the file to fix and a sentence saying what is wrong and how to fix it. */
export interface Problem {
  file: string;
  message: string;
}

/** A pure check over the course; returns every problem it finds, none when all is well. */
export type CrossReferenceCheck = (course: Course) => Problem[];

import fs from 'node:fs';
import path from 'node:path';
import { loadExercises } from './catalog.ts';
import type { Course } from './course-model.ts';
import type { Exercise } from './exercise-schema.ts';
import { loadLessons, LESSONS_DIR, type LessonFile } from './lessons.ts';
import { exercisePaths, METADATA_DIR } from './paths.ts';
import { loadQuiz, QUIZ_DIR } from './quiz.ts';

export interface LoadedCourse {
  lessons: LessonFile[];
  exercises: Exercise[];
  /** The cross-reference view of the above, for checkCrossReferences. */
  references: Course;
}

function readIfPresent(file: string): string | undefined {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
}

/**
 * Reads and validates every lesson, exercise record and (once any quiz file exists) the quiz.
 * Throws a ContentError naming the file on the first invalid one; cross-references are left to
 * checkCrossReferences so all of them can be reported at once.
 */
export function loadCourse(dirs: { lessons?: string; exercises?: string; quiz?: string } = {}): LoadedCourse {
  const lessons = loadLessons(dirs.lessons ?? LESSONS_DIR);
  const metadataDir = dirs.exercises ?? METADATA_DIR;
  const exercises = fs.existsSync(metadataDir) ? loadExercises(metadataDir) : [];
  const quizDir = dirs.quiz ?? QUIZ_DIR;
  const hasQuiz = fs.existsSync(quizDir) && fs.readdirSync(quizDir).some((name) => name.endsWith('.json'));
  const quiz = hasQuiz ? loadQuiz(quizDir) : undefined;

  const references: Course = {
    lessons: lessons.map((lesson) => ({
      slug: lesson.slug,
      file: lesson.file,
      exercises: lesson.data.exercises,
      quiz: lesson.data.quiz,
      body: lesson.body,
    })),
    exercises: exercises.map((exercise) => {
      const paths = exercisePaths(exercise.slug);
      const documents = [paths.readme, paths.walkthrough].flatMap((file) => {
        const body = readIfPresent(file);
        return body === undefined ? [] : [{ file, body }];
      });
      return {
        slug: exercise.slug,
        file: path.join(metadataDir, `${exercise.slug}.json`),
        lesson: exercise.lesson,
        quiz: exercise.quiz,
        documents,
      };
    }),
    quiz: quiz?.map((question) => ({
      id: question.id,
      file: path.join(quizDir, `${question.section}.json`),
      lesson: question.lesson,
      anchor: question.anchor,
      exercise: question.exercise,
    })),
  };
  return { lessons, exercises, references };
}

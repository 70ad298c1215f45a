import fs from 'node:fs';
import type { LoadedCourse } from '../course/course.ts';
import type { Exercise } from '../course/exercise-schema.ts';
import { exercisePaths } from '../course/paths.ts';

/** What the pages need about one exercise, computed once when the config loads. */
export interface ExercisePageData extends Exercise {
  /** The reference solution's source, shown behind the walkthrough reveal; null until written. */
  solutionSource: string | null;
  /** Repository paths, for the "files" list on the page. */
  files: { stub: string; readme: string; solution: string; walkthrough: string; suite: string };
}

export interface LessonSummary {
  slug: string;
  title: string;
  summary: string;
  section: string;
  order: number;
  minutes: number;
}

export interface CourseData {
  lessons: LessonSummary[];
  exercises: ExercisePageData[];
}

const VIRTUAL_ID = 'virtual:course-data';
const RESOLVED_ID = `\0${VIRTUAL_ID}`;

function relative(file: string, root: string): string {
  return file.startsWith(root) ? file.slice(root.length + 1) : file;
}

export function courseData(course: LoadedCourse, root: string): CourseData {
  return {
    lessons: course.lessons.map(({ slug, data }) => ({
      slug,
      title: data.title,
      summary: data.summary,
      section: data.section,
      order: data.order,
      minutes: data.minutes,
    })),
    exercises: course.exercises.map((exercise) => {
      const paths = exercisePaths(exercise.slug);
      return {
        ...exercise,
        solutionSource: fs.existsSync(paths.solution) ? fs.readFileSync(paths.solution, 'utf8') : null,
        files: {
          stub: relative(paths.stub, root),
          readme: relative(paths.readme, root),
          solution: relative(paths.solution, root),
          walkthrough: relative(paths.walkthrough, root),
          suite: relative(paths.suite, root),
        },
      };
    }),
  };
}

/**
 * A Vite plugin serving `virtual:course-data`: the validated course, read in Node when the config
 * loads, so pages never recompute repository paths from inside Vite's bundle.
 */
export function courseDataPlugin(data: CourseData) {
  return {
    name: 'system-design-lab:course-data',
    resolveId(id: string) {
      return id === VIRTUAL_ID ? RESOLVED_ID : undefined;
    },
    load(id: string) {
      return id === RESOLVED_ID ? `export default ${JSON.stringify(data)};` : undefined;
    },
  };
}

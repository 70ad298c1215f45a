import path from 'node:path';
import { ContentError } from './catalog.ts';
import { stripCodeFences } from './lessons.ts';
import type { Course, CrossReferenceCheck, Problem } from './course-model.ts';
import { ROOT } from './paths.ts';
import { QUIZ_CROSS_REFERENCE_CHECKS } from './quiz-references.ts';

export type {
  Course,
  CourseExercise,
  CourseLesson,
  CourseQuestion,
  CrossReferenceCheck,
  Problem,
} from './course-model.ts';

function display(file: string): string {
  return path.isAbsolute(file) ? path.relative(ROOT, file) : file;
}

function problem(file: string, message: string): Problem {
  return { file: display(file), message };
}

const quote = (items: Iterable<string>) => [...items].map((item) => `"${item}"`).join(', ');

/** A lesson's `exercises` names only exercises that have a metadata record. */
export const lessonExercisesExist: CrossReferenceCheck = (course) => {
  const known = new Set(course.exercises.map((exercise) => exercise.slug));
  return course.lessons.flatMap((lesson) =>
    lesson.exercises
      .filter((slug) => !known.has(slug))
      .map((slug) =>
        problem(
          lesson.file,
          `\`exercises\` lists "${slug}", but there is no content/exercises/${slug}.json. Fix the slug or add the exercise's metadata.`,
        ),
      ),
  );
};

/** An exercise's `lesson` names a lesson that exists. */
export const exerciseLessonsExist: CrossReferenceCheck = (course) => {
  const known = new Set(course.lessons.map((lesson) => lesson.slug));
  return course.exercises
    .filter((exercise) => !known.has(exercise.lesson))
    .map((exercise) =>
      problem(
        exercise.file,
        `\`lesson\` is "${exercise.lesson}", but there is no content/lessons/${exercise.lesson}.mdx. Name an existing lesson or write that one.`,
      ),
    );
};

/** A lesson's `exercises` is exactly the set of exercises whose `lesson` names it. */
export const lessonsAgreeWithExercises: CrossReferenceCheck = (course) => {
  const problems: Problem[] = [];
  const bySlug = new Map(course.exercises.map((exercise) => [exercise.slug, exercise]));
  for (const lesson of course.lessons) {
    const seen = new Set<string>();
    for (const slug of lesson.exercises) {
      if (seen.has(slug)) problems.push(problem(lesson.file, `\`exercises\` lists "${slug}" twice.`));
      seen.add(slug);
      const exercise = bySlug.get(slug);
      if (exercise && exercise.lesson !== lesson.slug) {
        problems.push(
          problem(
            lesson.file,
            `\`exercises\` lists "${slug}", but ${display(exercise.file)} says its lesson is "${exercise.lesson}". Move it to that lesson or change the exercise's \`lesson\`.`,
          ),
        );
      }
    }
    const missing = course.exercises.filter((exercise) => exercise.lesson === lesson.slug && !seen.has(exercise.slug));
    if (missing.length > 0) {
      problems.push(
        problem(
          lesson.file,
          `${quote(missing.map((exercise) => exercise.slug))} name${missing.length === 1 ? 's' : ''} this lesson as ${missing.length === 1 ? 'its' : 'their'} \`lesson\`; add ${missing.length === 1 ? 'it' : 'them'} to \`exercises\`.`,
        ),
      );
    }
  }
  return problems;
};

/** Quiz ids listed by lessons and exercises exist (skipped while the quiz is not loaded). */
export const quizIdsExist: CrossReferenceCheck = (course) => {
  if (!course.quiz) return [];
  const known = new Set(course.quiz.map((question) => question.id));
  const sources = [...course.lessons, ...course.exercises];
  return sources.flatMap((source) =>
    source.quiz
      .filter((id) => !known.has(id))
      .map((id) => problem(source.file, `\`quiz\` lists "${id}", but no question in content/quiz/ has that id.`)),
  );
};

/** Every link target written in a Markdown or MDX body, outside code. */
export function extractLinks(markdown: string): string[] {
  const text = stripCodeFences(markdown).replace(/`[^`\n]*`/g, '');
  const links: string[] = [];
  for (const match of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+["'][^)]*["'])?\s*\)/g)) links.push(match[1] ?? '');
  for (const match of text.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)) links.push(match[1] ?? '');
  for (const match of text.matchAll(/\bhref=(?:["']([^"']+)["']|\{\s*["'`]([^"'`]+)["'`]\s*\})/g)) {
    links.push(match[1] ?? match[2] ?? '');
  }
  return links;
}

/** The course page a root-relative or page-relative link points at, or undefined if external. */
export function resolveLink(link: string, pageUrl: string): { pathname: string; hash: string } | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(link) || link.startsWith('//')) return undefined;
  const url = new URL(link, new URL(pageUrl, 'https://course.invalid'));
  return { pathname: decodeURI(url.pathname), hash: decodeURIComponent(url.hash.slice(1)) };
}

/**
 * The site's page namespace, as the course builds it. Returns a complaint when `pathname#hash`
 * points at nothing, or undefined when it resolves (or is not one of ours to judge).
 */
function judgeTarget(course: Course, pathname: string, hash: string): string | undefined {
  const parts = pathname.split('/').filter(Boolean);
  const [kind, slug, extra] = parts;
  const trailing = pathname.endsWith('/') ? '' : ' (course pages end with "/")';
  if (parts.length === 0) return undefined;
  if (kind === 'lessons') {
    if (!slug || extra !== undefined) return `is not a lesson page; lessons live at /lessons/<slug>/`;
    if (!course.lessons.some((lesson) => lesson.slug === slug))
      return `points at a lesson that does not exist (no content/lessons/${slug}.mdx)`;
    return trailing ? `should end with "/"` : undefined;
  }
  if (kind === 'exercises') {
    if (extra !== undefined) return `is not an exercise page; exercises live at /exercises/<slug>/`;
    if (slug && !course.exercises.some((exercise) => exercise.slug === slug)) {
      return `points at an exercise that does not exist (no content/exercises/${slug}.json)`;
    }
    return trailing ? `should end with "/"` : undefined;
  }
  if (kind === 'quiz') {
    if (slug !== undefined) return `is not a page; the quiz is one page, /quiz/, with a question id as anchor`;
    if (hash && course.quiz && !course.quiz.some((question) => question.id === hash)) {
      return `points at quiz question "${hash}", which does not exist in content/quiz/`;
    }
    return trailing ? `should end with "/"` : undefined;
  }
  // Other root paths (assets in public/, the search index) are checked on the built site.
  return undefined;
}

/**
 * Links in lesson and exercise Markdown point at lessons, exercises and quiz questions that
 * exist. Heading anchors are checked on the built site (test/site), where ids are final.
 */
export const linksResolve: CrossReferenceCheck = (course) => {
  const pages = [
    ...course.lessons.map((lesson) => ({ file: lesson.file, body: lesson.body, url: `/lessons/${lesson.slug}/` })),
    ...course.exercises.flatMap((exercise) =>
      exercise.documents.map((doc) => ({ ...doc, url: `/exercises/${exercise.slug}/` })),
    ),
  ];
  const problems: Problem[] = [];
  for (const page of pages) {
    for (const link of extractLinks(page.body)) {
      const target = resolveLink(link, page.url);
      if (!target) continue;
      const complaint = judgeTarget(course, target.pathname, target.hash);
      if (complaint) problems.push(problem(page.file, `the link "${link}" ${complaint}.`));
    }
  }
  return problems;
};

/**
 * The checks the build and the dev check run. Add a check by appending a CrossReferenceCheck
 * here (quiz checks included); each one stays a pure function with its own unit tests.
 */
export const CROSS_REFERENCE_CHECKS: CrossReferenceCheck[] = [
  lessonExercisesExist,
  exerciseLessonsExist,
  lessonsAgreeWithExercises,
  quizIdsExist,
  linksResolve,
  // Question → lesson heading and exercise, and the `quiz` lists that point back (quiz-references.ts).
  ...QUIZ_CROSS_REFERENCE_CHECKS,
];

/** Runs `checks` and returns every problem, sorted by file so one file's problems sit together. */
export function checkCrossReferences(
  course: Course,
  checks: readonly CrossReferenceCheck[] = CROSS_REFERENCE_CHECKS,
): Problem[] {
  return checks.flatMap((check) => check(course)).sort((a, b) => a.file.localeCompare(b.file));
}

/** One line per problem, "file: message". */
export function formatProblems(problems: readonly Problem[]): string {
  return problems.map(({ file, message }) => `${file}: ${message}`).join('\n');
}

/** Throws a ContentError listing every broken cross-reference, or returns when there is none. */
export function assertCrossReferences(course: Course, checks?: readonly CrossReferenceCheck[]): void {
  const problems = checkCrossReferences(course, checks);
  if (problems.length === 0) return;
  throw new ContentError(
    `${problems.length} broken cross-reference${problems.length === 1 ? '' : 's'} between lessons, exercises and the quiz:\n${formatProblems(problems)}`,
  );
}

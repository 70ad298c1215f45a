import { describe, expect, it } from 'vitest';
import type { Course, CourseExercise, CourseLesson, CourseQuestion } from '../../src/course/cross-references.ts';
import {
  everyLessonIsQuizzed,
  exerciseQuizMatchesQuestions,
  lessonQuizMatchesQuestions,
  quizExercisesExist,
  quizLessonAnchorsResolve,
} from '../../src/course/quiz-references.ts';

function lesson(slug: string, body: string, quiz: string[] = []): CourseLesson {
  return { slug, file: `content/lessons/${slug}.mdx`, exercises: [], quiz, body };
}

function exercise(slug: string, quiz: string[] = []): CourseExercise {
  return { slug, file: `content/exercises/${slug}.json`, lesson: 'cache-strategies', quiz, documents: [] };
}

function question(id: string, lessonSlug: string, anchor: string, exerciseSlug?: string): CourseQuestion {
  return { id, file: 'content/quiz/cache-patterns.json', lesson: lessonSlug, anchor, exercise: exerciseSlug };
}

const strategiesBody = `
## Cache-aside

Text.

### Write path: delete, don't update

\`\`\`ts
// ## Not a heading
\`\`\`

## Cache-aside
`;

function course(parts: Partial<Course>): Course {
  return { lessons: [], exercises: [], quiz: [], ...parts };
}

describe('quizLessonAnchorsResolve', () => {
  it('accepts anchors computed the way Astro slugs headings, duplicates included', () => {
    const links = course({
      lessons: [lesson('cache-strategies', strategiesBody)],
      quiz: [
        question('a', 'cache-strategies', 'cache-aside'),
        question('b', 'cache-strategies', 'write-path-delete-dont-update'),
        question('c', 'cache-strategies', 'cache-aside-1'),
      ],
    });

    const problems = quizLessonAnchorsResolve(links);

    expect(problems).toEqual([]);
  });

  it('names the question when its lesson does not exist', () => {
    const links = course({ quiz: [question('ttl-semantics', 'no-such-lesson', 'ttl')] });

    const problems = quizLessonAnchorsResolve(links);

    expect(problems).toMatchInlineSnapshot(`
      [
        {
          "file": "content/quiz/cache-patterns.json",
          "message": "question "ttl-semantics" links to lesson "no-such-lesson", but there is no content/lessons/no-such-lesson.mdx. Fix \`lesson\` or write the lesson.",
        },
      ]
    `);
  });

  it('names the question and lists the real headings when its anchor is missing, ignoring headings inside code', () => {
    const links = course({
      lessons: [lesson('cache-strategies', strategiesBody)],
      quiz: [question('delete-on-write', 'cache-strategies', 'not-a-heading')],
    });

    const problems = quizLessonAnchorsResolve(links);

    expect(problems).toMatchInlineSnapshot(`
      [
        {
          "file": "content/quiz/cache-patterns.json",
          "message": "question "delete-on-write" links to #not-a-heading in content/lessons/cache-strategies.mdx, but no heading there has that id. Headings: "cache-aside", "write-path-delete-dont-update", "cache-aside-1".",
        },
      ]
    `);
  });

  it('checks nothing while the quiz is not loaded', () => {
    const links = course({ quiz: undefined });

    expect(quizLessonAnchorsResolve(links)).toEqual([]);
  });
});

describe('quizExercisesExist', () => {
  it('accepts questions without an exercise and questions whose exercise has metadata', () => {
    const links = course({
      exercises: [exercise('cache-aside')],
      quiz: [question('a', 'x', 'y'), question('b', 'x', 'y', 'cache-aside')],
    });

    expect(quizExercisesExist(links)).toEqual([]);
  });

  it('names the question whose exercise has no metadata', () => {
    const links = course({ quiz: [question('lock-command', 'x', 'y', 'stampede-lock')] });

    const problems = quizExercisesExist(links);

    expect(problems.map((p) => p.message)).toMatchInlineSnapshot(`
      [
        "question "lock-command" links to exercise "stampede-lock", but there is no content/exercises/stampede-lock.json. Fix \`exercise\`, remove it, or add the exercise's metadata.",
      ]
    `);
  });
});

describe('lessonQuizMatchesQuestions', () => {
  it('accepts a lesson whose quiz list is exactly the questions that point at it, in any order', () => {
    const links = course({
      lessons: [lesson('cache-strategies', strategiesBody, ['b', 'a'])],
      quiz: [question('a', 'cache-strategies', 'cache-aside'), question('b', 'cache-strategies', 'cache-aside')],
    });

    expect(lessonQuizMatchesQuestions(links)).toEqual([]);
  });

  it('reports questions that point at a lesson which does not list them', () => {
    const links = course({
      lessons: [lesson('cache-strategies', strategiesBody, ['a'])],
      quiz: [
        question('a', 'cache-strategies', 'cache-aside'),
        question('b', 'cache-strategies', 'cache-aside'),
        question('c', 'cache-strategies', 'cache-aside'),
      ],
    });

    const problems = lessonQuizMatchesQuestions(links);

    expect(problems).toMatchInlineSnapshot(`
      [
        {
          "file": "content/lessons/cache-strategies.mdx",
          "message": "questions "b", "c" link to this lesson; add them to \`quiz\`.",
        },
      ]
    `);
  });

  it('reports a listed question that links to another lesson, and a duplicate', () => {
    const links = course({
      lessons: [lesson('cache-strategies', strategiesBody, ['a', 'a']), lesson('monitoring', '## Hit ratio', [])],
      quiz: [question('a', 'monitoring', 'hit-ratio')],
    });

    const problems = lessonQuizMatchesQuestions(links);

    expect(problems.map((p) => `${p.file}: ${p.message}`)).toMatchInlineSnapshot(`
      [
        "content/lessons/cache-strategies.mdx: \`quiz\` lists "a", but that question links to "monitoring", not here. Remove it from \`quiz\` or change the question's \`lesson\`.",
        "content/lessons/cache-strategies.mdx: \`quiz\` lists "a" twice.",
        "content/lessons/monitoring.mdx: question "a" links to this lesson; add it to \`quiz\`.",
      ]
    `);
  });

  it('leaves unknown ids to quizIdsExist', () => {
    const links = course({ lessons: [lesson('cache-strategies', strategiesBody, ['ghost'])], quiz: [] });

    expect(lessonQuizMatchesQuestions(links)).toEqual([]);
  });
});

describe('exerciseQuizMatchesQuestions', () => {
  it('accepts an exercise whose quiz list is exactly the questions that point at it', () => {
    const links = course({
      exercises: [exercise('cache-aside', ['a']), exercise('write-behind')],
      quiz: [question('a', 'x', 'y', 'cache-aside'), question('b', 'x', 'y')],
    });

    expect(exerciseQuizMatchesQuestions(links)).toEqual([]);
  });

  it('reports a listed question with no exercise and a pointing question that is not listed', () => {
    const links = course({
      exercises: [exercise('cache-aside', ['b'])],
      quiz: [question('a', 'x', 'y', 'cache-aside'), question('b', 'x', 'y')],
    });

    const problems = exerciseQuizMatchesQuestions(links);

    expect(problems.map((p) => p.message)).toMatchInlineSnapshot(`
      [
        "\`quiz\` lists "b", but that question links to no exercise, not here. Remove it from \`quiz\` or change the question's \`exercise\`.",
        "question "a" links to this exercise; add it to \`quiz\`.",
      ]
    `);
  });
});

describe('everyLessonIsQuizzed', () => {
  it('accepts a course where every lesson is linked from at least one question', () => {
    const links = course({
      lessons: [lesson('queues', ''), lesson('feeds', '')],
      quiz: [question('a', 'queues', 'x'), question('b', 'feeds', 'y'), question('c', 'feeds', 'z')],
    });

    expect(everyLessonIsQuizzed(links)).toEqual([]);
  });

  it('names each lesson no question links to, and how to fix it', () => {
    const links = course({
      lessons: [lesson('queues', ''), lesson('feeds', ''), lesson('locks', '')],
      quiz: [question('a', 'feeds', 'y')],
    });

    const problems = everyLessonIsQuizzed(links);

    expect(problems.map((p) => `${p.file}: ${p.message}`)).toMatchInlineSnapshot(`
      [
        "content/lessons/queues.mdx: no quiz question links to lesson "queues". Write at least one question in content/quiz/ whose \`lesson\` is "queues" and whose \`anchor\` is the heading that teaches it.",
        "content/lessons/locks.mdx: no quiz question links to lesson "locks". Write at least one question in content/quiz/ whose \`lesson\` is "locks" and whose \`anchor\` is the heading that teaches it.",
      ]
    `);
  });

  it('checks nothing while the quiz is not loaded', () => {
    expect(everyLessonIsQuizzed(course({ lessons: [lesson('queues', '')], quiz: undefined }))).toEqual([]);
  });
});

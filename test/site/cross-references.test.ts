import { describe, expect, it } from 'vitest';
import {
  assertCrossReferences,
  checkCrossReferences,
  exerciseLessonsExist,
  extractLinks,
  lessonExercisesExist,
  lessonsAgreeWithExercises,
  linksResolve,
  quizIdsExist,
  type Course,
  type CourseExercise,
  type CourseLesson,
} from '../../src/course/cross-references.ts';

function lesson(slug: string, overrides: Partial<CourseLesson> = {}): CourseLesson {
  return { slug, file: `content/lessons/${slug}.mdx`, exercises: [], quiz: [], body: 'Text.', ...overrides };
}

function exercise(slug: string, lessonSlug: string, overrides: Partial<CourseExercise> = {}): CourseExercise {
  return { slug, file: `content/exercises/${slug}.json`, lesson: lessonSlug, quiz: [], documents: [], ...overrides };
}

/** A small, consistent course; each test breaks one thing in it. */
function course(overrides: Partial<Course> = {}): Course {
  return {
    lessons: [
      lesson('cache-strategies', { exercises: ['cache-aside'], quiz: ['ttl-basics'], body: '## TTL\n\nText.' }),
      lesson('monitoring', { quiz: ['lag-basics'], body: '## Lag\n\nText.' }),
    ],
    exercises: [exercise('cache-aside', 'cache-strategies')],
    quiz: [
      { id: 'ttl-basics', file: 'content/quiz/cache-patterns.json', lesson: 'cache-strategies', anchor: 'ttl' },
      { id: 'lag-basics', file: 'content/quiz/feeds-sharding.json', lesson: 'monitoring', anchor: 'lag' },
    ],
    ...overrides,
  };
}

describe('cross-reference checks', () => {
  it('find nothing wrong in a consistent course', () => {
    const consistent = course();

    const problems = checkCrossReferences(consistent);

    expect(problems).toEqual([]);
  });

  it('report a lesson exercise that has no metadata record', () => {
    const broken = course({ lessons: [lesson('cache-strategies', { exercises: ['cache-aside', 'cache-asid'] })] });

    const problems = lessonExercisesExist(broken);

    expect(problems).toMatchInlineSnapshot(`
      [
        {
          "file": "content/lessons/cache-strategies.mdx",
          "message": "\`exercises\` lists "cache-asid", but there is no content/exercises/cache-asid.json. Fix the slug or add the exercise's metadata.",
        },
      ]
    `);
  });

  it('report an exercise whose lesson does not exist', () => {
    const broken = course({ exercises: [exercise('cache-aside', 'cache-stratgies')] });

    const problems = exerciseLessonsExist(broken);

    expect(problems).toMatchInlineSnapshot(`
      [
        {
          "file": "content/exercises/cache-aside.json",
          "message": "\`lesson\` is "cache-stratgies", but there is no content/lessons/cache-stratgies.mdx. Name an existing lesson or write that one.",
        },
      ]
    `);
  });

  it('report a lesson that lists an exercise belonging to another lesson', () => {
    const broken = course({
      lessons: [
        lesson('cache-strategies', { exercises: ['cache-aside'] }),
        lesson('monitoring', { exercises: ['cache-aside'] }),
      ],
    });

    const problems = lessonsAgreeWithExercises(broken);

    expect(problems).toMatchInlineSnapshot(`
      [
        {
          "file": "content/lessons/monitoring.mdx",
          "message": "\`exercises\` lists "cache-aside", but content/exercises/cache-aside.json says its lesson is "cache-strategies". Move it to that lesson or change the exercise's \`lesson\`.",
        },
      ]
    `);
  });

  it('report a lesson that leaves out an exercise naming it', () => {
    const broken = course({ lessons: [lesson('cache-strategies')] });

    const problems = lessonsAgreeWithExercises(broken);

    expect(problems).toMatchInlineSnapshot(`
      [
        {
          "file": "content/lessons/cache-strategies.mdx",
          "message": ""cache-aside" names this lesson as its \`lesson\`; add it to \`exercises\`.",
        },
      ]
    `);
  });

  it('report quiz ids that no question has, and skip them while the quiz is not loaded', () => {
    const broken = course({ exercises: [exercise('cache-aside', 'cache-strategies', { quiz: ['ttl-basic'] })] });

    const problems = quizIdsExist(broken);
    const withoutQuiz = quizIdsExist({ ...broken, quiz: undefined });

    expect(problems).toMatchInlineSnapshot(`
      [
        {
          "file": "content/exercises/cache-aside.json",
          "message": "\`quiz\` lists "ttl-basic", but no question in content/quiz/ has that id.",
        },
      ]
    `);
    expect(withoutQuiz).toEqual([]);
  });

  it('report Markdown links to lessons, exercises and quiz questions that do not exist', () => {
    const body = [
      'See [strategies](/lessons/cache-strategies/) and [the TTL question](/quiz/#ttl-basics).',
      'Broken: [a](/lessons/caching/), [b](../cache-stratgies/#intro), [c](/exercises/cache-asid/),',
      '[d](/quiz/#no-such-question), [e](/lessons/monitoring), <a href="/quiz/ttl-basics/">f</a>.',
      '```md',
      '[inside code](/lessons/nowhere/) is not a link',
      '```',
    ].join('\n');
    const broken = course({
      lessons: [lesson('cache-strategies', { exercises: ['cache-aside'] }), lesson('monitoring', { body })],
    });

    const problems = linksResolve(broken);

    expect(problems).toMatchInlineSnapshot(`
      [
        {
          "file": "content/lessons/monitoring.mdx",
          "message": "the link "/lessons/caching/" points at a lesson that does not exist (no content/lessons/caching.mdx).",
        },
        {
          "file": "content/lessons/monitoring.mdx",
          "message": "the link "../cache-stratgies/#intro" points at a lesson that does not exist (no content/lessons/cache-stratgies.mdx).",
        },
        {
          "file": "content/lessons/monitoring.mdx",
          "message": "the link "/exercises/cache-asid/" points at an exercise that does not exist (no content/exercises/cache-asid.json).",
        },
        {
          "file": "content/lessons/monitoring.mdx",
          "message": "the link "/quiz/#no-such-question" points at quiz question "no-such-question", which does not exist in content/quiz/.",
        },
        {
          "file": "content/lessons/monitoring.mdx",
          "message": "the link "/lessons/monitoring" should end with "/".",
        },
        {
          "file": "content/lessons/monitoring.mdx",
          "message": "the link "/quiz/ttl-basics/" is not a page; the quiz is one page, /quiz/, with a question id as anchor.",
        },
      ]
    `);
  });

  it('check links in the exercise READMEs shown on exercise pages', () => {
    const documents = [
      { file: 'exercises/cache-aside/README.md', body: 'Read [the lesson](/lessons/cache-strategy/) first.' },
    ];
    const broken = course({ exercises: [exercise('cache-aside', 'cache-strategies', { documents })] });

    const problems = linksResolve(broken);

    expect(problems).toMatchInlineSnapshot(`
      [
        {
          "file": "exercises/cache-aside/README.md",
          "message": "the link "/lessons/cache-strategy/" points at a lesson that does not exist (no content/lessons/cache-strategy.mdx).",
        },
      ]
    `);
  });

  it('throw one error listing every problem, grouped by file', () => {
    const broken = course({
      lessons: [
        lesson('cache-strategies', { exercises: ['cache-asid'] }),
        lesson('monitoring', { body: '[x](/lessons/nope/)' }),
      ],
      quiz: undefined,
    });

    const assertion = () => assertCrossReferences(broken);

    expect(assertion).toThrowErrorMatchingInlineSnapshot(`
      [ContentError: 3 broken cross-references between lessons, exercises and the quiz:
      content/lessons/cache-strategies.mdx: \`exercises\` lists "cache-asid", but there is no content/exercises/cache-asid.json. Fix the slug or add the exercise's metadata.
      content/lessons/cache-strategies.mdx: "cache-aside" names this lesson as its \`lesson\`; add it to \`exercises\`.
      content/lessons/monitoring.mdx: the link "/lessons/nope/" points at a lesson that does not exist (no content/lessons/nope.mdx).]
    `);
  });

  it('run extra checks given to it, so the quiz can plug its own in', () => {
    const alwaysComplains = () => [{ file: 'content/quiz/cache-patterns.json', message: 'extra check ran.' }];

    const problems = checkCrossReferences(course(), [alwaysComplains]);

    expect(problems).toEqual([{ file: 'content/quiz/cache-patterns.json', message: 'extra check ran.' }]);
  });
});

describe('extractLinks', () => {
  it('finds inline, reference-style and href links but not those in code', () => {
    const markdown = [
      '[inline](/lessons/a/ "title") and `[code](/lessons/b/)`',
      '[ref]: /lessons/c/#part',
      '<a href="/exercises/d/">d</a> <a href={"/quiz/#e"}>e</a>',
      '~~~',
      '[fenced](/lessons/f/)',
      '~~~',
    ].join('\n');

    const links = extractLinks(markdown);

    expect(links).toEqual(['/lessons/a/', '/lessons/c/#part', '/exercises/d/', '/quiz/#e']);
  });
});

import { describe, expect, it } from 'vitest';
import { loadCourse } from '../../src/course/course.ts';
import { checkCrossReferences, formatProblems, quizIdsExist } from '../../src/course/cross-references.ts';
import { loadQuiz, parseQuiz, type QuizFileInput } from '../../src/course/quiz.ts';
import { QUIZ_CROSS_REFERENCE_CHECKS } from '../../src/course/quiz-references.ts';
import { QUIZ_SECTIONS, QUIZZES, QuizQuestionSchema, quizLength } from '../../src/course/quiz-schema.ts';

function validQuestion(overrides: Record<string, unknown> = {}) {
  return {
    id: 'delete-on-write',
    section: 'cache-patterns',
    prompt: 'What should a cache-aside writer do with the cached key?',
    choices: [
      { text: 'Update it with the new value' },
      { text: 'Delete it', correct: true },
      { text: 'Leave it until the TTL expires' },
      { text: 'Write the cache before the database' },
    ],
    explanation:
      'Deleting never writes an old value back and is idempotent, so concurrent writers cannot leave stale data.',
    misconception: { choice: 0, why: 'Two writers can reach the cache in the opposite order to the database.' },
    lesson: 'cache-strategies',
    anchor: 'cache-aside',
    sources: [
      {
        title: 'Scaling Memcache at Facebook',
        url: 'https://www.usenix.org/conference/nsdi13/technical-sessions/presentation/nishtala',
      },
    ],
    ...overrides,
  };
}

/** A full, valid quiz in memory, with `patch` applied to the first question. */
function quizFiles(patch: Record<string, unknown> = {}): QuizFileInput[] {
  return QUIZ_SECTIONS.map((section) => ({
    file: `content/quiz/${section.id}.json`,
    data: Array.from({ length: section.count }, (_, index) =>
      validQuestion({
        id: `${section.id}-${index}`,
        section: section.id,
        ...(section.id === 'cache-patterns' && index === 0 ? patch : {}),
      }),
    ),
  }));
}

function errorOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected an error, got none');
}

describe('the quiz content', () => {
  const quiz = loadQuiz();

  it('has a 30-question caching quiz and a 20-question quiz on queues, streams and scale', () => {
    expect(QUIZZES.map((candidate) => [candidate.id, quizLength(candidate)])).toEqual([
      ['caching', 30],
      ['queues-and-scale', 20],
    ]);
    expect(quiz, 'the course promises 50 questions in all').toHaveLength(50);
  });

  it('splits the questions across the sections as QUIZZES says, in section order', () => {
    const counts = QUIZ_SECTIONS.map((section) => quiz.filter((question) => question.section === section.id).length);

    expect(counts).toEqual([8, 7, 7, 8, 5, 5, 6, 4]);
    expect(quiz.map((question) => question.section)).toEqual(QUIZ_SECTIONS.flatMap((s) => Array(s.count).fill(s.id)));
  });

  it('gives every question four choices with exactly one correct answer', () => {
    for (const question of quiz) {
      expect(question.choices, question.id).toHaveLength(4);
      expect(
        question.choices.filter((choice) => choice.correct),
        `${question.id} needs exactly one correct choice`,
      ).toHaveLength(1);
    }
  });

  it('uses each id once', () => {
    const ids = quiz.map((question) => question.id);

    expect(new Set(ids).size).toBe(ids.length);
  });

  it('does not put the right answer in the same position most of the time', () => {
    const positions = quiz.map((question) => question.choices.findIndex((choice) => choice.correct));

    for (const position of [0, 1, 2, 3]) {
      const share = positions.filter((p) => p === position).length / positions.length;
      expect(
        share,
        `choice ${position + 1} is right in ${Math.round(share * 100)}% of questions; a learner could guess it`,
      ).toBeLessThan(0.4);
    }
  });

  it('resolves every link: lessons, heading anchors, exercises, and the quiz lists that point back', () => {
    const course = loadCourse().references;

    const problems = checkCrossReferences(course, [quizIdsExist, ...QUIZ_CROSS_REFERENCE_CHECKS]);

    expect(problems, formatProblems(problems)).toEqual([]);
  });
});

describe('QuizQuestionSchema', () => {
  it('accepts a well-formed question', () => {
    expect(QuizQuestionSchema.safeParse(validQuestion()).success).toBe(true);
  });

  it('rejects a question with two right answers', () => {
    const choices = validQuestion().choices.map((choice, index) => ({ ...choice, correct: index >= 2 }));

    expect(QuizQuestionSchema.safeParse(validQuestion({ choices })).success).toBe(false);
  });

  it('rejects a question with three choices', () => {
    const choices = validQuestion().choices.slice(0, 3);

    expect(QuizQuestionSchema.safeParse(validQuestion({ choices })).success).toBe(false);
  });

  it('rejects a misconception that points at the right answer', () => {
    expect(
      QuizQuestionSchema.safeParse(
        validQuestion({ misconception: { choice: 1, why: 'This is the right answer, not a trap.' } }),
      ).success,
    ).toBe(false);
  });
});

describe('parseQuiz', () => {
  it('accepts a complete quiz and returns it in section order', () => {
    const questions = parseQuiz([...quizFiles()].reverse());

    expect(questions.map((question) => question.id).slice(0, 2)).toEqual(['cache-patterns-0', 'cache-patterns-1']);
  });

  it('names the file and the question when a question has two right answers', () => {
    const choices = validQuestion().choices.map((choice, index) => ({ ...choice, correct: index >= 2 }));

    const message = errorOf(() => parseQuiz(quizFiles({ choices })));

    expect(message).toMatchInlineSnapshot(`
      "Question "cache-patterns-0" in content/quiz/cache-patterns.json is invalid:
      ✖ exactly one choice must have "correct": true
        → at choices"
    `);
  });

  it('names the question when it sits in the wrong section file', () => {
    const message = errorOf(() => parseQuiz(quizFiles({ section: 'cdn-architecture' })));

    expect(message).toMatchInlineSnapshot(
      `"Question "cache-patterns-0" in content/quiz/cache-patterns.json has section "cdn-architecture"; move it to content/quiz/cdn-architecture.json or fix its section."`,
    );
  });

  it('rejects an id used twice', () => {
    const message = errorOf(() => parseQuiz(quizFiles({ id: 'cache-patterns-1' })));

    expect(message).toMatchInlineSnapshot(
      `"Question id "cache-patterns-1" is used twice (content/quiz/cache-patterns.json and content/quiz/cache-patterns.json); ids must be unique."`,
    );
  });

  it('rejects a section with the wrong number of questions', () => {
    const files = quizFiles();
    files[1] = { ...files[1]!, data: (files[1]!.data as unknown[]).slice(1) };

    const message = errorOf(() => parseQuiz(files));

    expect(message).toMatchInlineSnapshot(
      `"content/quiz/invalidation-eviction.json holds 6 questions; the "Invalidation and eviction" section needs exactly 7."`,
    );
  });
});

import { z } from 'zod';
import { SourceSchema } from './lesson-schema.ts';

const kebab = z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'use lowercase kebab-case, like "cache-aside"');

/**
 * The course's quizzes, each with its sections in page order and how many questions each section
 * must hold. The file `content/quiz/<section id>.json` holds that section's questions; section ids
 * are unique across quizzes, so a question's section also names its quiz.
 */
export const QUIZZES = [
  {
    id: 'caching',
    title: 'Caching quiz',
    path: '/quiz/',
    summary: 'caching patterns, invalidation and eviction, hot keys and stampedes, and CDNs',
    sections: [
      { id: 'cache-patterns', title: 'Cache patterns and strategies', count: 8 },
      { id: 'invalidation-eviction', title: 'Invalidation and eviction', count: 7 },
      { id: 'hot-keys-stampedes', title: 'Hot keys and stampedes', count: 7 },
      { id: 'cdn-architecture', title: 'CDN and architecture', count: 8 },
    ],
  },
  {
    id: 'queues-and-scale',
    title: 'Queues, streams and scale quiz',
    path: '/quiz/queues-and-scale/',
    summary: 'queues and dead letters, streams, rate limiting and backpressure, feeds, sharding, monitoring, and locks',
    sections: [
      { id: 'queues-delivery', title: 'Queues, delivery and dead letters', count: 5 },
      { id: 'streams-backpressure', title: 'Streams, rate limiting and backpressure', count: 5 },
      { id: 'feeds-sharding', title: 'Feeds, sharding and monitoring', count: 6 },
      { id: 'locks-transactions', title: 'Locks and transactions', count: 4 },
    ],
  },
] as const;

export type QuizId = (typeof QUIZZES)[number]['id'];

/** Every section of every quiz, in page order, each knowing its quiz. */
export const QUIZ_SECTIONS = QUIZZES.flatMap((quiz) => quiz.sections.map((section) => ({ ...section, quiz: quiz.id })));

export type QuizSectionId = (typeof QUIZZES)[number]['sections'][number]['id'];

const sectionIds = QUIZ_SECTIONS.map((section) => section.id) as [QuizSectionId, ...QuizSectionId[]];

/** One answer option. */
export const QuizChoiceSchema = z
  .object({
    /** What the learner reads next to the radio button; plain text. */
    text: z.string().min(1),
    /** True for the one right answer. */
    correct: z.boolean().default(false),
  })
  .strict();

/**
 * One multiple-choice question in `content/quiz/<section>.json`. It links back to the lesson
 * section that teaches the idea and, where there is one, to the exercise that practises it;
 * both links are checked at build time (src/course/cross-references.ts).
 */
export const QuizQuestionSchema = z
  .object({
    /** Stable, descriptive kebab-case id, e.g. "delete-beats-update-on-write"; also the page anchor. */
    id: kebab,
    /** The quiz section the question belongs to; must match the file it sits in. */
    section: z.enum(sectionIds),
    /** The question as the learner reads it; plain text. */
    prompt: z.string().min(20),
    /** Exactly four options, in the order shown, exactly one of them correct. */
    choices: z
      .array(QuizChoiceSchema)
      .length(4, 'a question has exactly four choices')
      .refine((choices) => choices.filter((choice) => choice.correct).length === 1, {
        message: 'exactly one choice must have "correct": true',
      })
      .refine((choices) => new Set(choices.map((choice) => choice.text)).size === choices.length, {
        message: 'two choices have the same text',
      }),
    /** Why the right answer is right, with the fact and its source named. */
    explanation: z.string().min(40),
    /** The wrong choice learners pick most often and why it is wrong. */
    misconception: z
      .object({
        /** Zero-based index into `choices`; never the correct one. */
        choice: z.number().int().min(0).max(3),
        /** Why that choice is wrong: the half-truth it rests on. */
        why: z.string().min(30),
      })
      .strict(),
    /** Slug of the lesson (content/lessons/<slug>.mdx) that teaches this. */
    lesson: kebab,
    /** Id of the heading in that lesson that covers it, as Astro renders it (github-slugger). */
    anchor: kebab,
    /** Slug of the exercise (content/exercises/<slug>.json) that practises it, if any. */
    exercise: kebab.optional(),
    /** Primary sources for the facts in the explanation. */
    sources: z.array(SourceSchema).min(1),
  })
  .strict()
  .refine((question) => !question.choices[question.misconception.choice]?.correct, {
    message: 'misconception.choice must point at a wrong choice, not the correct one',
    path: ['misconception', 'choice'],
  });

export type QuizQuestion = z.infer<typeof QuizQuestionSchema>;
export type QuizChoice = z.infer<typeof QuizChoiceSchema>;

/** A section file: the questions of one section, in page order. */
export const QuizFileSchema = z.array(z.unknown()).min(1, 'a quiz file holds at least one question');

export type Quiz = (typeof QUIZZES)[number];

/** The quiz a section belongs to. */
export function quizOfSection(sectionId: string): Quiz {
  const quiz = QUIZZES.find((candidate) => candidate.sections.some((section) => section.id === sectionId));
  if (!quiz) throw new Error(`No quiz has a section "${sectionId}".`);
  return quiz;
}

/** How many questions a quiz holds. */
export function quizLength(quiz: Quiz): number {
  return quiz.sections.reduce((sum, section) => sum + section.count, 0);
}

import { z } from 'zod';

const slug = z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'use lowercase kebab-case, like "cache-aside"');

/**
 * One record per exercise, in `content/exercises/<slug>.json`. Everything else about an
 * exercise (its stub, solution, README and suite) is found from the slug by `exercisePaths`.
 */
export const ExerciseSchema = z
  .object({
    /** Kebab-case id; also the folder name under exercises/ and solutions/. */
    slug,
    /** Title shown in the runner and on the exercise page. */
    title: z.string().min(3),
    /** One sentence: what the learner builds. */
    summary: z.string().min(10),
    /** Position in the course path; the runner lists exercises in this order. */
    order: z.number().int().positive(),
    /** Slug of the lesson in content/lessons/ that teaches the pattern. */
    lesson: slug,
    /** Ids of the quiz questions (content/quiz/) that test the same ideas. */
    quiz: z.array(z.string().min(1)).default([]),
    /**
     * Hints, revealed one at a time: the first is a nudge, later ones describe the approach.
     * Never the code.
     */
    hints: z.array(z.string().min(10)).min(2),
    /** What each level of the graded suite means; test names are prefixed with the level. */
    levels: z.object({
      core: z.string().min(10),
      staff: z.string().min(10),
    }),
  })
  .strict();

export type Exercise = z.infer<typeof ExerciseSchema>;

/** The levels a graded test can belong to, in the order they are graded. */
export const TEST_LEVELS = ['core', 'staff'] as const;
export type TestLevel = (typeof TEST_LEVELS)[number];

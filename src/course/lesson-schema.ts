import { z } from 'zod';

/** The course's sections, in the order the sidebar shows them. */
export const LESSON_SECTIONS = ['Foundations', 'Caching', 'Messaging', 'Scaling', 'Interviews'] as const;

/** A primary source a lesson's facts and numbers come from. */
export const SourceSchema = z
  .object({
    /** What the source is, e.g. "Redis docs: Key eviction". */
    title: z.string().min(3),
    /** Where to read it. */
    url: z.url(),
  })
  .strict();

/**
 * Frontmatter of a lesson in `content/lessons/<slug>.mdx`. The slug is the file name.
 * Cross-references (exercises, quiz ids) are checked against the exercise metadata and the quiz
 * at build time, in both directions.
 */
export const LessonSchema = z.object({
  /** Page title. */
  title: z.string().min(3),
  /** One or two sentences: what the learner will be able to do after the lesson. */
  summary: z.string().min(20),
  /** Position in the course path, 1-based and unique. */
  order: z.number().int().positive(),
  /** Sidebar group. */
  section: z.enum(LESSON_SECTIONS),
  /** Estimated reading time in minutes. */
  minutes: z.number().int().positive().max(90),
  /** Slugs of the exercises that practise this lesson (their metadata names this lesson). */
  exercises: z.array(z.string()).default([]),
  /** Ids of the quiz questions that test this lesson (each question links back to it). */
  quiz: z.array(z.string()).default([]),
  /** The primary sources behind the lesson's facts and numbers. */
  sources: z.array(SourceSchema).min(1),
});

export type Lesson = z.infer<typeof LessonSchema>;

import { defineCollection } from 'astro:content';
import { glob } from 'astro/loaders';
import { z } from 'astro/zod';
import { docsSchema } from '@astrojs/starlight/schema';
import { LessonSchema } from './course/lesson-schema.ts';
import { exerciseDocsLoader } from './site/exercise-docs-loader.ts';

/**
 * Starlight renders the `docs` collection; ours is the lessons in the top-level content/lessons/,
 * with ids prefixed so they are served at /lessons/<slug>/. Files starting with "_" are drafts.
 */
const docs = defineCollection({
  loader: glob({
    base: './content/lessons',
    pattern: '[^_]*.mdx',
    generateId: ({ entry }) => `lessons/${entry.replace(/\.mdx$/, '')}`,
  }),
  schema: (context) =>
    docsSchema({ extend: LessonSchema.partial().extend({ coursePage: z.literal(true).optional() }) })(
      context,
    ).superRefine((data, ctx) => {
      // <StarlightPage> pages (home, exercises, quiz) share this schema and mark themselves
      // with `coursePage: true`; every lesson must satisfy the full LessonSchema.
      if (data.coursePage) return;
      const lesson = LessonSchema.safeParse(data);
      if (!lesson.success) for (const issue of lesson.error.issues) ctx.addIssue({ ...issue, code: 'custom' });
    }),
});

/** Each exercise's task README and solution walkthrough, rendered for its page. */
const exerciseDocs = defineCollection({
  loader: exerciseDocsLoader(),
  schema: z.object({ slug: z.string(), kind: z.enum(['task', 'walkthrough']) }),
});

export const collections = { docs, exerciseDocs };

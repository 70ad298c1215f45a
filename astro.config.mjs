// @ts-check
import mdx from '@astrojs/mdx';
import starlight from '@astrojs/starlight';
import { defineConfig } from 'astro/config';
import { loadCourse } from './src/course/course.ts';
import { lessonsBySection } from './src/course/lessons.ts';
import { exercisePaths } from './src/course/paths.ts';
import { QUIZZES } from './src/course/quiz-schema.ts';
import { courseIntegration } from './src/site/integration.ts';

// Read once here: the sidebar needs lesson order and sections before Astro's content layer runs,
// and an invalid lesson or exercise record stops the build with a message naming the file.
const course = loadCourse();

const sidebar = [
  ...lessonsBySection(course.lessons).map(({ section, lessons }) => ({
    label: section,
    items: lessons.map((lesson) => ({ slug: `lessons/${lesson.slug}` })),
  })),
  {
    label: 'Exercises',
    items: [
      { label: 'All exercises', link: '/exercises/' },
      ...course.exercises.map((exercise) => ({ label: exercise.title, link: `/exercises/${exercise.slug}/` })),
    ],
  },
  { label: 'Quizzes', items: QUIZZES.map((quiz) => ({ label: quiz.title, link: quiz.path })) },
];

// Editing these restarts `astro dev`, so the sidebar and the checks follow the content.
const watchFiles = [
  ...course.lessons.map((lesson) => lesson.file),
  ...course.exercises.flatMap((exercise) => Object.values(exercisePaths(exercise.slug))),
];

export default defineConfig({
  // Publishing under a sub-path (GitHub Pages project site)? Set SITE_URL and SITE_BASE.
  site: process.env.SITE_URL,
  base: process.env.SITE_BASE ?? '/',
  srcDir: './src',
  trailingSlash: 'always',
  // Lesson pages ship no script beyond search, the theme switch and Starlight's navigation;
  // Starlight turns on link prefetching by default, which would add one.
  prefetch: false,
  integrations: [
    starlight({
      title: 'System Design Lab',
      description: 'Interview prep for backend engineers: caching, queues and scaling, with graded Redis exercises.',
      sidebar,
      markdown: {
        // Starlight's asides and heading links only run on these folders (plus its own).
        processedDirs: ['./content/lessons', './exercises', './solutions'],
      },
      customCss: ['./src/styles/course.css'],
      // The copy button is client JavaScript; code is still selectable. Long lines wrap, so no
      // code block becomes a scrollable region that keyboard users could not reach.
      expressiveCode: {
        frames: { showCopyToClipboardButton: false },
        defaultProps: { wrap: true },
      },
      lastUpdated: false,
      pagination: true,
    }),
    mdx(),
    courseIntegration(course, watchFiles),
  ],
});

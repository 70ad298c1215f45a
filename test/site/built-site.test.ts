import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCourse } from '../../src/course/course.ts';
import { checkCrossReferences, formatProblems } from '../../src/course/cross-references.ts';
import { QUIZZES } from '../../src/course/quiz-schema.ts';
import { checkBuiltSite, parsePage } from '../../src/site/link-check.ts';
import { SITE_DIST } from './dist.ts';

// Runs on whatever lessons and exercises exist: nothing here names a lesson or counts them.
const dist = SITE_DIST;
const course = loadCourse();
const read = (url: string) => fs.readFileSync(path.join(dist, url, 'index.html'), 'utf8');

describe('the built site', () => {
  it('has every internal link and heading anchor resolving', () => {
    const problems = checkBuiltSite(dist);

    expect(problems, `Broken links in dist/:\n${formatProblems(problems)}`).toEqual([]);
  });

  it('has every cross-reference between lessons, exercises and quiz questions resolving', () => {
    const problems = checkCrossReferences(course.references);

    expect(problems, `Broken cross-references:\n${formatProblems(problems)}`).toEqual([]);
  });

  it('has a page for the home, every quiz, every lesson and every exercise', () => {
    const urls = [
      '/',
      ...QUIZZES.map((quiz) => quiz.path),
      '/exercises/',
      ...course.lessons.map((l) => `/lessons/${l.slug}/`),
      ...course.exercises.map((e) => `/exercises/${e.slug}/`),
    ];

    const missing = urls.filter((url) => !fs.existsSync(path.join(dist, url, 'index.html')));

    expect(missing, 'These pages were not built').toEqual([]);
  });

  it('puts each exercise page together from its metadata: hints one at a time, solution behind a reveal', () => {
    for (const exercise of course.exercises) {
      const html = read(`/exercises/${exercise.slug}/`);
      // Highlighted code splits commands into spans; compare the text a reader sees.
      const text = html.replace(/<[^>]+>/g, '');

      const hintDepth = html.match(/<details class="course-hint"/g)?.length ?? 0;

      expect(hintDepth, `${exercise.slug}: one nested <details> per hint`).toBe(exercise.hints.length);
      expect(text.includes(`npm run lab -- watch ${exercise.slug}`), `${exercise.slug}: the watch command`).toBe(true);
      expect(text.includes(`npm run grade -- ${exercise.slug}`), `${exercise.slug}: the grade command`).toBe(true);
      expect(/<details class="course-solution">\s*<summary>/.test(html), `${exercise.slug}: the solution reveal`).toBe(
        true,
      );
    }
  });

  it('ships lesson pages with no scripts beyond search, theme, navigation and code-block scrolling', () => {
    const allowed =
      /\/_astro\/(?:Search|TableOfContents|MobileTableOfContents)\.astro_astro_type_script|\/_astro\/ec\.[\w-]+\.js$/;
    for (const lesson of course.lessons) {
      const page = parsePage(read(`/lessons/${lesson.slug}/`), `lessons/${lesson.slug}/index.html`);

      const external = page.links.filter((link) => link.tag === 'script').map((link) => link.href);

      expect(
        external.filter((src) => !allowed.test(src)),
        `${lesson.slug}: unexpected scripts`,
      ).toEqual([]);
    }
  });

  it('gives every lesson diagram a text alternative that screen readers can reach', () => {
    for (const lesson of course.lessons) {
      const html = read(`/lessons/${lesson.slug}/`);
      const ids = new Set([...html.matchAll(/\bid="([^"]+)"/g)].map((match) => match[1]));

      for (const [svg] of html.matchAll(/<svg\b[^>]*role="img"[^>]*>/g)) {
        const labelledBy = /aria-labelledby="([^"]+)"/.exec(svg)?.[1]?.split(/\s+/) ?? [];

        expect(labelledBy.length, `${lesson.slug}: ${svg} needs aria-labelledby naming its <title> and <desc>`).toBe(2);
        for (const id of labelledBy)
          expect(ids.has(id), `${lesson.slug}: ${svg} names #${id}, which is not on the page`).toBe(true);
      }
    }
  });
});

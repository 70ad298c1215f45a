import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadCourse } from '../../src/course/course.ts';
import { checkCrossReferences, formatProblems } from '../../src/course/cross-references.ts';
import { exercisePaths, ROOT } from '../../src/course/paths.ts';
import { QUIZZES } from '../../src/course/quiz-schema.ts';
import { checkBuiltSite, parsePage } from '../../src/site/link-check.ts';
import { SITE_DIST } from './dist.ts';

// Runs on whatever lessons and exercises exist: nothing here names a lesson or counts them.
const dist = SITE_DIST;
const course = loadCourse();
const read = (url: string) => fs.readFileSync(path.join(dist, url, 'index.html'), 'utf8');

/** The budget for a page with a simulator: 15 KB of JavaScript, gzipped. */
const JS_BUDGET_GZIP_BYTES = 15 * 1024;

/** Bodies of a page's inline scripts (those without src), JSON data blocks left out. */
function inlineScripts(html: string): string[] {
  return [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)]
    .filter(
      ([, attributes]) =>
        !/\ssrc=/i.test(attributes ?? '') && !/type="application\/(?:ld\+)?json"/i.test(attributes ?? ''),
    )
    .map(([, , body]) => body ?? '')
    .filter((body) => body.trim() !== '');
}

/** Script files under dist/ that these srcs load, with every chunk they import, as dist-relative paths. */
function reachableScripts(srcs: string[]): Set<string> {
  const seen = new Set<string>();
  // The build may carry a base path (SITE_BASE); files live under dist/_astro/ either way.
  const pending = srcs.filter((src) => src.includes('/_astro/')).map((src) => src.slice(src.indexOf('/_astro/') + 1));
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const code = fs.readFileSync(path.join(dist, file), 'utf8');
    for (const specifier of importedScripts(code))
      pending.push(specifier.startsWith('.') ? path.posix.join(path.posix.dirname(file), specifier) : specifier);
  }
  return seen;
}

/** The .js files a module imports, statically or dynamically: relative, or absolute under /_astro/. */
function importedScripts(code: string): string[] {
  return [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+\.js)["']/g)].flatMap(([, specifier]) => {
    if (specifier!.startsWith('.')) return [specifier!];
    return specifier!.includes('/_astro/') ? [specifier!.slice(specifier!.indexOf('/_astro/') + 1)] : [];
  });
}

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

  it('puts each exercise page together from its metadata: hints one at a time, the solution kept until a pass', () => {
    for (const exercise of course.exercises) {
      const html = read(`/exercises/${exercise.slug}/`);
      // Highlighted code splits commands into spans; compare the text a reader sees.
      const text = html.replace(/<[^>]+>/g, '');
      const template = /<template data-course-solution[^>]*>([\s\S]*?)<\/template>/.exec(html)?.[1] ?? '';
      const codeTitle = `<span class="title">${path.relative(ROOT, exercisePaths(exercise.slug).solution)}</span>`;

      const hintDepth = html.match(/<details class="course-hint"/g)?.length ?? 0;

      expect(hintDepth, `${exercise.slug}: one nested <details> per hint`).toBe(exercise.hints.length);
      expect(text.includes(`npm run lab -- watch ${exercise.slug}`), `${exercise.slug}: the watch command`).toBe(true);
      expect(text.includes(`npm run grade -- ${exercise.slug}`), `${exercise.slug}: the grade command`).toBe(true);
      expect(html.includes('<details class="course-solution"'), `${exercise.slug}: no reveal for the solution`).toBe(
        false,
      );
      expect(template, `${exercise.slug}: the rendered reference waits in a <template>`).toContain(codeTitle);
      expect(html.split(codeTitle).length, `${exercise.slug}: the reference appears nowhere else`).toBe(2);
      expect(text.includes(`npm run lab -- solution ${exercise.slug}`), `${exercise.slug}: how to see it`).toBe(true);
    }
  });

  it('ships lesson pages with no scripts beyond search, theme, navigation and code-block scrolling', () => {
    const allowed =
      /\/_astro\/(?:Search|TableOfContents|MobileTableOfContents)\.astro_astro_type_script|\/_astro\/ec\.[\w-]+\.js$/;
    const pages = course.lessons.map((lesson) => {
      const html = read(`/lessons/${lesson.slug}/`);
      const page = parsePage(html, `lessons/${lesson.slug}/index.html`);
      const external = page.links.filter((link) => link.tag === 'script').map((link) => link.href);
      return { slug: lesson.slug, html, external, inline: inlineScripts(html) };
    });
    // Starlight's own inline scripts (theme, sidebar state) are on every page; what a simulator
    // page adds is what a page without one does not have.
    const baseline = new Set(
      pages.filter((page) => !page.html.includes('data-simulator=')).flatMap((page) => page.inline),
    );

    for (const page of pages) {
      const unexpected = page.external.filter((src) => !allowed.test(src));
      if (!page.html.includes('data-simulator=')) {
        expect(unexpected, `${page.slug}: unexpected scripts`).toEqual([]);
        continue;
      }

      // A simulator page may add module scripts, within the budget: 15 KB of JavaScript
      // gzipped, counting each added file once with the chunks it imports, and added inline scripts.
      const shared = reachableScripts(page.external.filter((src) => allowed.test(src)));
      const added = [...reachableScripts(unexpected)]
        .filter((file) => !shared.has(file))
        .map((file) => ({ name: file, bytes: gzipSync(fs.readFileSync(path.join(dist, file))).length }));
      const addedInline = page.inline.filter((body) => !baseline.has(body));
      addedInline.forEach((body, index) =>
        added.push({ name: `inline script ${index + 1}`, bytes: gzipSync(body).length }),
      );
      for (const file of reachableScripts(addedInline.flatMap((body) => importedScripts(body).map((f) => `/${f}`))))
        if (!shared.has(file) && !added.some((script) => script.name === file))
          added.push({ name: file, bytes: gzipSync(fs.readFileSync(path.join(dist, file))).length });
      const total = added.reduce((sum, script) => sum + script.bytes, 0);
      const listing = added.map((script) => `${script.name}: ${script.bytes} B gzipped`).join(', ');

      expect(added.length, `${page.slug} has a simulator but no script of its own`).toBeGreaterThan(0);
      expect(
        total,
        `${page.slug}: its simulator scripts total ${total} B gzipped, over the 15 KB budget (${listing})`,
      ).toBeLessThanOrEqual(JS_BUDGET_GZIP_BYTES);
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

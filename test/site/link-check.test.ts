import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkBuiltSite } from '../../src/site/link-check.ts';

let dist: string | undefined;

/** Writes a tiny built site: path inside dist -> HTML. */
function site(pages: Record<string, string>): string {
  dist = fs.mkdtempSync(path.join(os.tmpdir(), 'sdl-dist-'));
  for (const [file, html] of Object.entries(pages)) {
    fs.mkdirSync(path.dirname(path.join(dist, file)), { recursive: true });
    fs.writeFileSync(path.join(dist, file), html);
  }
  return dist;
}

afterEach(() => {
  if (dist) fs.rmSync(dist, { recursive: true, force: true });
});

describe('checkBuiltSite', () => {
  it('accepts pages, anchors and assets that exist', () => {
    const root = site({
      'index.html':
        '<a href="/lessons/a/#why">a</a><a href="lessons/a/">rel</a><link href="/_astro/x.css"><a href="https://redis.io/">out</a>',
      'lessons/a/index.html':
        '<h1 id="_top">A</h1><h2 id="why">Why</h2><a href="../../#top">home</a><a href="#_top">top</a><script>const s = "<a href=\'/nowhere/\'>";</script>',
      '_astro/x.css': 'body{}',
    });

    const problems = checkBuiltSite(root);

    expect(problems).toEqual([]);
  });

  it('reports missing pages, missing anchors, missing files and links without the trailing slash', () => {
    const root = site({
      'index.html': '<p id="top"></p>',
      'lessons/a/index.html':
        '<a href="/lessons/b/">b</a><a href="/#nowhere">home</a><img src="/missing.png" alt=""><a href="/lessons/a">self</a>',
      'exercises/x/index.html': '<a href="/lessons/a/#gone">a</a>',
    });

    const problems = checkBuiltSite(root);

    expect(problems).toMatchInlineSnapshot(`
      [
        {
          "file": "content/exercises/x.json, exercises/x/README.md or solutions/x/README.md",
          "message": "dist/exercises/x/index.html links to "/lessons/a/#gone", but /lessons/a/ has no element with id "gone".",
        },
        {
          "file": "content/lessons/a.mdx",
          "message": "dist/lessons/a/index.html links to "/lessons/b/", a page that does not exist.",
        },
        {
          "file": "content/lessons/a.mdx",
          "message": "dist/lessons/a/index.html links to "/#nowhere", but / has no element with id "nowhere".",
        },
        {
          "file": "content/lessons/a.mdx",
          "message": "dist/lessons/a/index.html links to "/missing.png", a file that does not exist.",
        },
        {
          "file": "content/lessons/a.mdx",
          "message": "dist/lessons/a/index.html links to "/lessons/a", which should end with "/" (/lessons/a/) so it works on every static host.",
        },
      ]
    `);
  });

  it('reports a broken link shared by many pages once', () => {
    const root = site({
      'index.html': '<a href="/quiz/">quiz</a>',
      'lessons/a/index.html': '<a href="/quiz/">quiz</a>',
      'lessons/b/index.html': '<a href="/quiz/">quiz</a>',
    });

    const problems = checkBuiltSite(root);

    expect(problems).toMatchInlineSnapshot(`
      [
        {
          "file": "a shared component or the sidebar",
          "message": "3 pages link to "/quiz/", a page that does not exist (first: dist/index.html).",
        },
      ]
    `);
  });

  it('resolves links under a base path and reports links that escape it', () => {
    const root = site({
      'index.html': '<a href="/course/lessons/a/">a</a><a href="/lessons/a/">no base</a>',
      'lessons/a/index.html': '<a href="/course/">home</a>',
    });

    const problems = checkBuiltSite(root, '/course/');

    expect(problems).toMatchInlineSnapshot(`
      [
        {
          "file": "src/pages/index.astro",
          "message": "dist/index.html links to "/lessons/a/", which is outside the site's base "/course/"; write course links as "/lessons/<slug>/" and let the build add the base.",
        },
      ]
    `);
  });
});

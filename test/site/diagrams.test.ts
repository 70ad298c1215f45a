import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCourse } from '../../src/course/course.ts';
import { formatProblems } from '../../src/course/cross-references.ts';
import {
  checkLessonDiagrams,
  colourProblems,
  diagramCountProblems,
  parseSvgs,
  phoneWidthProblems,
} from '../../src/site/diagram-check.ts';
import { SITE_DIST } from './dist.ts';

const FILE = 'content/lessons/demo.mdx';

/** A figure as the lessons write it; `body` is the drawing, `attributes` go on the svg. */
function figure(id: string, body: string, attributes = 'viewBox="0 0 400 100" style="max-width:500px"'): string {
  return [
    '<figure>',
    `<svg role="img" aria-labelledby="${id}-title ${id}-desc" ${attributes} width="100%" xmlns="http://www.w3.org/2000/svg">`,
    `<title id="${id}-title">Diagram ${id}</title><desc id="${id}-desc">What diagram ${id} shows.</desc>`,
    body,
    '</svg><figcaption>Caption</figcaption></figure>',
  ].join('');
}

const readable = '<g fill="currentColor" font-size="12"><text x="10" y="20">Client A</text></g>';

describe('parseSvgs', () => {
  it('gives each text the font size and fill it inherits, and reads tspans on their own', () => {
    const html = figure(
      'a',
      '<g font-size="14" fill="var(--sl-color-text-accent)"><text>big</text><g font-size="0.5em"><text>half <tspan font-size="20">span</tspan></text></g></g><text>plain</text>',
    );

    const [svg] = parseSvgs(html);

    expect(svg?.title).toBe('Diagram a');
    expect(svg?.inFigure).toBe(true);
    expect(svg?.texts.map(({ content, fontSize, fill }) => [content, fontSize, fill])).toEqual([
      ['big', 14, 'var(--sl-color-text-accent)'],
      ['span', 20, 'var(--sl-color-text-accent)'],
      ['half', 7, 'var(--sl-color-text-accent)'],
      ['plain', 16, undefined],
    ]);
  });
});

describe('diagramCountProblems', () => {
  it('accepts three labelled figures', () => {
    const html = figure('a', readable) + figure('b', readable) + figure('c', readable);

    expect(diagramCountProblems(html, 'demo', FILE)).toEqual([]);
  });

  it('does not count an svg without a title and desc, or one outside a figure, and says why', () => {
    const unlabelled = '<figure><svg role="img" viewBox="0 0 10 10"><text>x</text></svg></figure>';
    const emptyDesc = figure('b', readable).replace('What diagram b shows.', ' ');
    const loose = figure('c', readable)
      .replace('<figure>', '')
      .replace(/<figcaption>.*<\/figure>/, '');
    const icon = '<svg aria-hidden="true" viewBox="0 0 24 24"><path d="M0 0"/></svg>';

    const problems = diagramCountProblems(figure('a', readable) + unlabelled + emptyDesc + loose + icon, 'demo', FILE);

    expect(problems.map((problem) => problem.message)).toMatchInlineSnapshot(`
      [
        "demo: the diagram an untitled svg has no text alternative: it needs aria-labelledby="<id>-title <id>-desc" naming its own non-empty <title> and <desc>.",
        "demo: the diagram "Diagram b" has no text alternative: aria-labelledby names #b-desc, which is not a non-empty <title> or <desc> inside it.",
        "demo: the diagram "Diagram c" is not inside a <figure> with a caption.",
        "demo has 1 labelled diagram; every lesson needs at least 3. Add a <figure> with an inline <svg role="img" aria-labelledby="…-title …-desc"> where a picture explains better than prose.",
      ]
    `);
  });
});

describe('phoneWidthProblems', () => {
  it('accepts text that is at least 9 px on a 328 px wide figure', () => {
    // 12 × 328 / 432 = 9.1 px; 9 × 328 / 328 = 9 px; a 200 px cap renders 9 × 200 / 200 = 9 px.
    const html =
      figure('a', '<text font-size="12">ok</text>', 'viewBox="0 0 432 300" style="max-width:560px"') +
      figure('b', '<text font-size="9">ok</text>', 'viewBox="0 0 328 300"') +
      figure('c', '<text font-size="9">ok</text>', 'viewBox="0 0 200 300" style="max-width:200px"');

    expect(phoneWidthProblems(html, 'demo', FILE)).toEqual([]);
  });

  it('names the lesson, the figure, the font size and the rendered px, and says how to fix it', () => {
    const html = figure(
      'a',
      '<g font-size="13"><text>Client A</text><text font-size="11">tick</text></g>',
      'viewBox="0 0 760 270" style="max-width:760px"',
    );

    const problems = phoneWidthProblems(html, 'demo', FILE);

    expect(problems).toMatchInlineSnapshot(`
      [
        {
          "file": "content/lessons/demo.mdx",
          "message": "demo: the diagram "Diagram a" has text at font-size 11 ("tick") in a viewBox 760 wide, which renders at 4.7 px in the 328 px a 360 px phone gives it; text needs at least 9 px. Fix: narrow the viewBox to at most 400 wide (lay it out taller), or raise that font-size to at least 21.",
        },
      ]
    `);
  });

  it('counts a text with no font-size anywhere as 16', () => {
    const html = figure('a', '<text>default</text>', 'viewBox="0 0 640 100"');

    const [problem] = phoneWidthProblems(html, 'demo', FILE);

    expect(problem?.message).toContain('font-size 16 ("default") in a viewBox 640 wide, which renders at 8.2 px');
  });
});

describe('colourProblems', () => {
  it('accepts currentColor and theme variables', () => {
    const html = figure(
      'a',
      '<g fill="currentColor"><text>a</text><text fill="var(--sl-color-text-accent)">b</text></g><rect fill="#fff"/>',
    );

    expect(colourProblems(html, 'demo', FILE)).toEqual([]);
  });

  it('reports text painted black or white, inherited or in a style', () => {
    const html =
      figure('a', '<g fill="#000"><text>dark</text></g>') +
      figure('b', '<text style="fill: white">light</text><text stroke="#FFFFFF">halo</text>');

    const problems = colourProblems(html, 'demo', FILE);

    expect(problems.map((problem) => problem.message)).toMatchInlineSnapshot(`
      [
        "demo: the diagram "Diagram a" paints text "dark" in #000, which vanishes in the light or the dark theme. Use currentColor or a Starlight variable such as var(--sl-color-text-accent).",
        "demo: the diagram "Diagram b" paints text "light" in white (and 1 more), which vanishes in the light or the dark theme. Use currentColor or a Starlight variable such as var(--sl-color-text-accent).",
      ]
    `);
  });
});

describe('the built lesson pages', () => {
  it('have three or more labelled diagrams each, legible on a phone and visible in both themes', () => {
    const problems = loadCourse().lessons.flatMap((lesson) => {
      const html = fs.readFileSync(path.join(SITE_DIST, 'lessons', lesson.slug, 'index.html'), 'utf8');
      return checkLessonDiagrams(html, lesson.slug, `content/lessons/${lesson.slug}.mdx`);
    });

    expect(problems, `Lesson diagrams to fix:\n${formatProblems(problems)}`).toEqual([]);
  });
});

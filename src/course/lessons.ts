import fs from 'node:fs';
import path from 'node:path';
import GithubSlugger from 'github-slugger';
import yaml from 'js-yaml';
import { ContentError, parseContent } from './catalog.ts';
import { LESSON_SECTIONS, LessonSchema, type Lesson } from './lesson-schema.ts';
import { ROOT } from './paths.ts';

export const LESSONS_DIR = path.join(ROOT, 'content', 'lessons');

/** A lesson as read from disk, outside Astro: for the sidebar, the dev check and link checks. */
export interface LessonFile {
  /** The file name without `.mdx`; the page is /lessons/<slug>/. */
  slug: string;
  file: string;
  data: Lesson;
  /** The MDX after the frontmatter. */
  body: string;
}

function display(file: string): string {
  return path.isAbsolute(file) ? path.relative(process.cwd(), file) : file;
}

const FRONTMATTER = /^---\r?\n([\s\S]*?)\r?\n---(?:\r?\n|$)/;

/** Splits an MDX file into its YAML frontmatter (parsed as Astro parses it) and its body. */
export function splitFrontmatter(text: string, file: string): { frontmatter: unknown; body: string } {
  const match = FRONTMATTER.exec(text);
  if (!match) {
    throw new ContentError(
      `${display(file)} has no frontmatter: start the file with a "---" block holding title, summary, order...`,
    );
  }
  let frontmatter: unknown;
  try {
    frontmatter = yaml.load(match[1] ?? '');
  } catch (error) {
    throw new ContentError(`${display(file)} has invalid YAML frontmatter: ${(error as Error).message}`);
  }
  return { frontmatter, body: text.slice(match[0].length) };
}

/** Validates one lesson's text; the slug must be kebab-case because it is the URL. */
export function parseLesson(text: string, file: string): LessonFile {
  const slug = path.basename(file).replace(/\.mdx$/, '');
  if (!/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(slug)) {
    throw new ContentError(`${display(file)}: rename it to lowercase kebab-case (the file name is the lesson's URL).`);
  }
  const { frontmatter, body } = splitFrontmatter(text, file);
  // Starlight's own fields (template, sidebar, ...) may sit beside ours; LessonSchema ignores them.
  const data = parseContent(LessonSchema, frontmatter, file);
  return { slug, file, data, body };
}

/**
 * Every lesson in content/lessons/, validated, in course order. Files starting with "_" are
 * drafts and skipped, as Astro's glob loader skips them.
 */
export function loadLessons(dir: string = LESSONS_DIR): LessonFile[] {
  if (!fs.existsSync(dir)) return [];
  const lessons = fs
    .readdirSync(dir)
    .filter((name) => name.endsWith('.mdx') && !name.startsWith('_'))
    .map((name) => {
      const file = path.join(dir, name);
      return parseLesson(fs.readFileSync(file, 'utf8'), file);
    });
  const orders = new Map<number, string>();
  for (const lesson of lessons) {
    const other = orders.get(lesson.data.order);
    if (other) {
      throw new ContentError(
        `${lesson.slug}.mdx and ${other}.mdx both have order ${lesson.data.order}; each lesson needs its own.`,
      );
    }
    orders.set(lesson.data.order, lesson.slug);
  }
  return lessons.sort((a, b) => a.data.order - b.data.order);
}

/** Lessons grouped by section, sections in LESSON_SECTIONS order, empty sections left out. */
export function lessonsBySection(lessons: readonly LessonFile[]): { section: string; lessons: LessonFile[] }[] {
  return LESSON_SECTIONS.map((section) => ({
    section,
    lessons: lessons.filter((lesson) => lesson.data.section === section).sort((a, b) => a.data.order - b.data.order),
  })).filter((group) => group.lessons.length > 0);
}

/** Removes fenced code blocks so headings and links inside code are not taken for real ones. */
export function stripCodeFences(markdown: string): string {
  return markdown.replace(/^([ \t]*)(`{3,}|~{3,})[^\n]*\n[\s\S]*?^\1\2[ \t]*$/gm, '');
}

/**
 * The ids Astro gives the Markdown headings of a body (github-slugger over the heading text),
 * plus explicit `id="..."` attributes. Best effort on the source; the built-site link check in
 * test/site is the authority.
 */
export function headingIds(body: string): Set<string> {
  const slugger = new GithubSlugger();
  const ids = new Set<string>();
  const text = stripCodeFences(body);
  for (const match of text.matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const plain = (match[1] ?? '')
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/<[^>]+>/g, '')
      .replace(/[`*]/g, '');
    ids.add(slugger.slug(plain));
  }
  for (const match of text.matchAll(/\bid=["']([^"']+)["']/g)) ids.add(match[1] ?? '');
  return ids;
}

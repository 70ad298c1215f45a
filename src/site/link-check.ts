import fs from 'node:fs';
import path from 'node:path';
import type { Problem } from '../course/course-model.ts';

/** One built HTML page: its URL, the ids it defines and the internal URLs it references. */
export interface BuiltPage {
  /** Path of the file inside dist/, e.g. "lessons/caching-fundamentals/index.html". */
  file: string;
  /** Its URL path without the base, e.g. "/lessons/caching-fundamentals/". */
  url: string;
  ids: Set<string>;
  links: { tag: string; href: string }[];
}

const ENTITIES: Record<string, string> = { amp: '&', quot: '"', apos: "'", lt: '<', gt: '>', '#39': "'", '#x27': "'" };
const decodeEntities = (value: string) => value.replace(/&(#?\w+);/g, (all, name: string) => ENTITIES[name] ?? all);

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag);
  if (!match) return undefined;
  return decodeEntities(match[1] ?? match[2] ?? match[3] ?? '');
}

/** Reads the ids and outgoing references of one page's HTML. */
export function parsePage(html: string, file: string): BuiltPage {
  const url = `/${file.replace(/\\/g, '/')}`.replace(/(^|\/)index\.html$/, '$1');
  // Script bodies are code, not markup; their strings must not count as links.
  const markup = html.replace(/(<script\b[^>]*>)[\s\S]*?<\/script>/gi, '$1</script>');
  const ids = new Set<string>();
  for (const match of markup.matchAll(/<[a-z][^>]*?\s(?:id|name)\s*=\s*(?:"([^"]*)"|'([^']*)')/gi)) {
    ids.add(decodeEntities(match[1] ?? match[2] ?? ''));
  }
  const links: BuiltPage['links'] = [];
  for (const match of markup.matchAll(/<(a|link|img|script|source|iframe)\b[^>]*>/gi)) {
    const tag = (match[1] ?? '').toLowerCase();
    const href = attribute(match[0], tag === 'a' || tag === 'link' ? 'href' : 'src');
    if (href !== undefined) links.push({ tag, href });
  }
  return { file, url, ids, links };
}

function walk(dir: string, prefix = ''): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    return entry.isDirectory() ? walk(path.join(dir, entry.name), relative) : [relative];
  });
}

/** The source a built page comes from, so a broken link is reported where it can be fixed. */
export function sourceOf(url: string): string {
  const [, kind, slug] = url.split('/');
  if (kind === 'lessons' && slug) return `content/lessons/${slug}.mdx`;
  if (kind === 'exercises' && slug)
    return `content/exercises/${slug}.json, exercises/${slug}/README.md or solutions/${slug}/README.md`;
  if (kind === 'exercises') return 'src/pages/exercises/index.astro';
  if (kind === 'quiz') return 'content/quiz/ or src/pages/quiz.astro';
  if (url === '/') return 'src/pages/index.astro';
  return `the page ${url}`;
}

/**
 * Every internal link, asset reference and fragment in the built site resolves: the page or file
 * exists under dist/, and `#fragment` is an id on the target page. `base` is Astro's `base`.
 */
export function checkBuiltSite(distDir: string, base = '/'): Problem[] {
  const files = walk(distDir);
  const fileSet = new Set(files);
  const pages = new Map<string, BuiltPage>();
  for (const file of files.filter((name) => name.endsWith('.html'))) {
    const page = parsePage(fs.readFileSync(path.join(distDir, file), 'utf8'), file);
    pages.set(page.url, page);
  }
  const basePath = base.endsWith('/') ? base : `${base}/`;
  // A broken link in the sidebar or a shared component shows up on every page: report it once.
  const broken = new Map<string, { href: string; why: string; pages: BuiltPage[] }>();
  for (const page of pages.values()) {
    const report = (href: string, why: string) => {
      const key = `${href}\u0000${why}`;
      const entry = broken.get(key) ?? { href, why, pages: [] };
      entry.pages.push(page);
      broken.set(key, entry);
    };
    for (const { tag, href } of page.links) {
      if (href === '' || /^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith('//')) continue;
      const resolved = new URL(href, new URL(`${basePath.slice(0, -1)}${page.url}`, 'https://site.invalid'));
      let pathname = decodeURI(resolved.pathname);
      const hash = decodeURIComponent(resolved.hash.slice(1));
      if (!`${pathname}/`.startsWith(basePath)) {
        report(
          href,
          `which is outside the site's base "${basePath}"; write course links as "/lessons/<slug>/" and let the build add the base`,
        );
        continue;
      }
      pathname = `/${pathname.slice(basePath.length)}`;
      const target = pages.get(pathname) ?? (pathname.endsWith('/') ? undefined : pages.get(`${pathname}/`));
      if (!target) {
        const asFile = pathname.slice(1);
        if (!fileSet.has(asFile) && !fileSet.has(decodeURIComponent(asFile))) {
          report(
            href,
            pathname.endsWith('/') || tag === 'a' ? 'a page that does not exist' : 'a file that does not exist',
          );
        }
        continue;
      }
      if (target.url !== pathname) {
        report(href, `which should end with "/" (${target.url}) so it works on every static host`);
        continue;
      }
      // "#top" scrolls to the top of any page (HTML spec, "scroll to the fragment").
      if (hash && hash.toLowerCase() !== 'top' && !target.ids.has(hash)) {
        report(href, `but ${target.url} has no element with id "${hash}"`);
      }
    }
  }
  return [...broken.values()].map(({ href, why, pages: [first, ...others] }) =>
    others.length === 0
      ? { file: sourceOf(first!.url), message: `dist/${first!.file} links to "${href}", ${why}.` }
      : {
          file: 'a shared component or the sidebar',
          message: `${others.length + 1} pages link to "${href}", ${why} (first: dist/${first!.file}).`,
        },
  );
}

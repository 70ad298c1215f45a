import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT } from '../course/paths.ts';

export interface BenchRow {
  metric: string;
  value: number;
  unit: string;
  /** The budget the figure should stay within, when there is one. */
  target?: string;
}

function sizeOf(entry: string): number {
  const stat = fs.statSync(entry);
  if (!stat.isDirectory()) return stat.size;
  return fs.readdirSync(entry).reduce((sum, name) => sum + sizeOf(path.join(entry, name)), 0);
}

/**
 * The JavaScript a page runs on load: inline scripts, the module scripts it references and what
 * those import statically. Dynamic imports (Pagefind's search UI, fetched when search opens) are
 * not counted.
 */
export function pageScripts(html: string, dist: string): string[] {
  const sources: string[] = [];
  const seen = new Set<string>();
  const addFile = (url: string) => {
    const file = path.join(dist, url.replace(/^\//, ''));
    if (seen.has(file) || !fs.existsSync(file)) return;
    seen.add(file);
    const code = fs.readFileSync(file, 'utf8');
    sources.push(code);
    for (const match of code.matchAll(/(?:^|[;\s}])import\s*(?:[\w{}*\s,$]+from\s*)?["'](\.{1,2}\/[^"']+)["']/g)) {
      addFile(path.posix.join(path.posix.dirname(url), match[1] ?? ''));
    }
  };
  for (const match of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
    const attributes = match[1] ?? '';
    const src = /\ssrc="([^"]+)"/.exec(attributes)?.[1];
    if (src) addFile(src);
    else if (!/type="(?!module|text\/javascript)[^"]*"/.test(attributes) && (match[2] ?? '').trim())
      sources.push(match[2] ?? '');
  }
  return sources;
}

/** Builds the site (timed) and measures it: build time, dist/ size, the heaviest lesson's JS. */
export async function benchSite(): Promise<BenchRow[]> {
  const started = performance.now();
  const build = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'astro', 'bin', 'astro.mjs'), 'build'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, NODE_ENV: 'production', ASTRO_TELEMETRY_DISABLED: '1' },
  });
  const buildSeconds = (performance.now() - started) / 1000;
  if (build.status !== 0) throw new Error(`astro build failed:\n${build.stdout}\n${build.stderr}`.slice(-4000));

  const dist = path.join(ROOT, 'dist');
  const lessonsDir = path.join(dist, 'lessons');
  const lessons = fs.existsSync(lessonsDir) ? fs.readdirSync(lessonsDir) : [];
  let heaviest = { slug: '(none)', raw: 0, gzip: 0 };
  for (const slug of lessons) {
    const html = fs.readFileSync(path.join(lessonsDir, slug, 'index.html'), 'utf8');
    const code = pageScripts(html, dist).join('\n');
    const raw = Buffer.byteLength(code);
    if (raw > heaviest.raw) heaviest = { slug, raw, gzip: gzipSync(code).length };
  }
  return [
    { metric: 'site build time', value: Number(buildSeconds.toFixed(1)), unit: 's', target: '< 60 s on 2 cores' },
    { metric: 'dist/ total size', value: Number((sizeOf(dist) / 1024 / 1024).toFixed(2)), unit: 'MiB' },
    {
      metric: `lesson page JS on load, raw (heaviest: ${heaviest.slug})`,
      value: heaviest.raw,
      unit: 'bytes',
      target: '< 16384',
    },
    {
      metric: `lesson page JS on load, gzipped (heaviest: ${heaviest.slug})`,
      value: heaviest.gzip,
      unit: 'bytes',
      target: '< 6144',
    },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.table(await benchSite());
}

import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT } from '../course/paths.ts';

/** One line of `npm run bench`. */
export interface BenchRow {
  metric: string;
  value: number;
  unit: string;
  /** The budget, in the bench table's notation ("<= 15360"). */
  target: string;
}

/** The budget for the quiz page's client JavaScript, gzipped. */
export const QUIZ_JS_BUDGET_BYTES = 15 * 1024;

/** Marks the quiz's own client code (src/components/quiz/quiz-client.ts) in the built output. */
const QUIZ_MARKER = 'system-design-lab:quiz';

const gzipBytes = (code: string) => gzipSync(code).byteLength;

/**
 * The JavaScript a visitor's browser runs on load: inline scripts plus external module scripts
 * and everything they import statically. Dynamic `import()` (Pagefind's search UI, fetched when
 * search opens) is not loaded with the page and is left out.
 */
function pageScripts(html: string, distDir: string): { name: string; code: string }[] {
  const scripts: { name: string; code: string }[] = [];
  const seen = new Set<string>();
  const addFile = (urlPath: string) => {
    const file = path.join(distDir, urlPath.replace(/^\/+/, ''));
    if (seen.has(file) || !fs.existsSync(file)) return;
    seen.add(file);
    const code = fs.readFileSync(file, 'utf8');
    scripts.push({ name: urlPath, code });
    for (const match of code.matchAll(/\b(?:import|export)\s*(?:[^'"();]*?\bfrom\s*)?["']([^"']+\.js)["']/g)) {
      addFile(path.posix.join(path.posix.dirname(urlPath), match[1]!));
    }
  };
  for (const match of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
    const attributes = match[1] ?? '';
    const src = /\bsrc=["']([^"']+)["']/.exec(attributes)?.[1];
    if (src) addFile(src);
    // JSON data islands are not code.
    else if (!/type=["']application\/(?:ld\+)?json["']/.test(attributes))
      scripts.push({ name: 'inline', code: match[2] ?? '' });
  }
  return scripts;
}

/**
 * Gzipped client JavaScript of the built quiz page (dist/quiz/index.html): the quiz's own script
 * and everything the page loads. Needs a build (`npm run build`) first.
 */
export async function benchQuiz(distDir: string = path.join(ROOT, 'dist')): Promise<BenchRow[]> {
  const page = path.join(distDir, 'quiz', 'index.html');
  if (!fs.existsSync(page))
    throw new Error(`${path.relative(ROOT, page)} does not exist; run \`npm run build\` first.`);
  const scripts = pageScripts(fs.readFileSync(page, 'utf8'), distDir);
  const quizScripts = scripts.filter((script) => script.code.includes(QUIZ_MARKER));
  if (quizScripts.length === 0)
    throw new Error(`The quiz page's script (marker "${QUIZ_MARKER}") is not in ${path.relative(ROOT, page)}.`);
  return [
    {
      metric: 'quiz page: quiz script JS (gzip)',
      value: quizScripts.reduce((sum, script) => sum + gzipBytes(script.code), 0),
      unit: 'bytes',
      target: `<= ${QUIZ_JS_BUDGET_BYTES}`,
    },
    {
      metric: 'quiz page: all client JS loaded with the page (gzip)',
      value: scripts.reduce((sum, script) => sum + gzipBytes(script.code), 0),
      unit: 'bytes',
      target: `<= ${QUIZ_JS_BUDGET_BYTES}`,
    },
  ];
}

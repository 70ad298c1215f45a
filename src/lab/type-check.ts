import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../course/paths.ts';

/**
 * The graded code is checked by TypeScript 7 (installed as `typescript7`): it is native and
 * several times faster than 6, which watch feels on every save. `typescript` itself is 6, for
 * `astro check`, whose language server needs the JavaScript API that 7 no longer ships.
 */
export const TYPESCRIPT7_DIR = path.join(ROOT, 'node_modules', 'typescript7');
const TSC = path.join(TYPESCRIPT7_DIR, 'bin', 'tsc');

/**
 * TypeScript 7's tsc is a native binary behind a small Node launcher; running the binary itself
 * saves a Node start (~50 ms and ~40 MB) on every check, which watch does on every save. Falls
 * back to the launcher when the package does not say where its binary is.
 */
let compiler: Promise<{ file: string; args: string[] }> | undefined;
// Looked up on the first check only: a command that never type-checks (hint, reset) pays nothing.
const findCompiler = () =>
  (compiler ??= import(path.join(TYPESCRIPT7_DIR, 'lib', 'getExePath.js'))
    .then(({ default: getExePath }: { default: () => string }) => {
      const exe = getExePath();
      fs.accessSync(exe, fs.constants.X_OK);
      return { file: exe, args: [] };
    })
    .catch(() => ({ file: process.execPath, args: [TSC] })));
let nextStage = 0;

/**
 * Type-checks the graded files with the project's strict settings. Returns the errors per slug
 * (absent when clean). A type error the tests happen not to reach is still a bug in review.
 *
 * The learner's `<slug>/` folders are copied under .lab/ first: a folder graded from anywhere
 * (the OS temp dir, another drive, one with a package.json of its own) is then checked as if it
 * sat in the project, resolving the project's ioredis and zod and read as an ES module, as
 * Vitest runs it. Messages name the learner's own files.
 */
export async function typeCheck(slugs: string[], implRoot: string): Promise<Map<string, string>> {
  const stage = path.join(ROOT, '.lab', `typecheck-${process.pid}-${++nextStage}`);
  const staged = new Map<string, { slug: string; original: string }>();
  try {
    for (const slug of slugs) {
      const from = path.join(implRoot, slug);
      for (const file of sourceFiles(from)) {
        const copy = path.join(stage, slug, path.relative(from, file));
        fs.mkdirSync(path.dirname(copy), { recursive: true });
        fs.copyFileSync(file, copy);
        staged.set(path.resolve(copy), { slug, original: file });
      }
    }
    const entries = slugs.map((slug) => path.join(stage, slug, `${slug}.ts`)).filter((file) => fs.existsSync(file));
    if (!entries.length) return new Map();
    const config = path.join(stage, 'tsconfig.json');
    // The project's lib includes the DOM for the site; an exercise is server code, and without
    // lib.dom the check takes ~18 MB less (Node's own globals come from @types/node).
    fs.writeFileSync(
      config,
      JSON.stringify({
        extends: path.join(ROOT, 'tsconfig.json'),
        compilerOptions: { noEmit: true, pretty: false, lib: ['es2023'] },
        include: [],
        files: entries,
      }),
    );
    // One checker thread: the type check runs beside the suite and should not slow it down.
    const tsc = await findCompiler();
    const output = await new Promise<string>((resolve) => {
      const child = execFile(
        tsc.file,
        [...tsc.args, '-p', config, '--singleThreaded'],
        { cwd: ROOT, timeout: 60_000 },
        (_error, stdout, stderr) => resolve(`${stdout}${stderr}`),
      );
      // …and at the lowest priority: on two cores the suite, which takes longer, gets them first.
      try {
        if (child.pid) os.setPriority(child.pid, 19);
      } catch {
        // Not allowed here: the check still runs, at normal priority.
      }
    });

    const errors = new Map<string, string[]>();
    for (const line of output.split('\n')) {
      const match = /^(.+?)\((\d+),(\d+)\): error (TS\d+: .*)$/.exec(line.trim());
      if (!match) continue;
      const file = staged.get(path.resolve(ROOT, match[1]!));
      if (!file) continue;
      const list = errors.get(file.slug) ?? [];
      list.push(`  ${shown(file.original)}:${match[2]}:${match[3]} ${match[4]}`);
      errors.set(file.slug, list);
    }
    return new Map([...errors].map(([slug, list]) => [slug, list.join('\n')]));
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** A file's path as the learner finds it: relative to the project when inside it. */
function shown(file: string): string {
  const relative = path.relative(ROOT, file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

/** The learner's TypeScript sources in a folder (their own node_modules left out). */
function sourceFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).flatMap((entry) => {
    const file = path.join(entry.parentPath, entry.name);
    if (file.split(path.sep).includes('node_modules') || !entry.isFile()) return [];
    // A package.json or tsconfig.json of theirs would change how the file is read: left out.
    if (entry.name === 'package.json' || entry.name === 'tsconfig.json') return [];
    return /\.(m|c)?tsx?$|\.json$/.test(entry.name) ? [file] : [];
  });
}

/**
 * `npm start`: serves the course site on localhost and says where the runner is.
 *
 * By default it serves a production build of the site (building it first when any source is
 * newer than dist/), because only a build has the search index: Pagefind indexes the built
 * HTML, and `astro dev` shows "search is only available in production builds". A learner
 * edits exercises, not lessons, so live reload buys them little. Course authors who do edit
 * lessons run `npm start -- --dev` for Astro's dev server with live reload.
 *
 * The production server also shows the learner's progress from the runner on the exercise
 * pages (src/site/lab-server.ts); the dev server does not.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../course/paths.ts';
import { serveLab } from '../site/lab-server.ts';
import { forgetSite, recordSite } from './site-url.ts';

const ASTRO = path.join(ROOT, 'node_modules', 'astro', 'bin', 'astro.mjs');
const DIST = path.join(ROOT, 'dist');
/** Everything the built site is made from. */
const SOURCES = ['content', 'src', 'exercises', 'solutions', 'public', 'astro.config.mjs', 'package-lock.json'];
const DEFAULT_PORT = 4321;

function newestChange(entry: string): number {
  if (!fs.existsSync(entry)) return 0;
  const stat = fs.statSync(entry);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return fs
    .readdirSync(entry)
    .filter((name) => name !== 'node_modules' && !name.startsWith('.'))
    .reduce((newest, name) => Math.max(newest, newestChange(path.join(entry, name))), stat.mtimeMs);
}

function siteIsStale(): boolean {
  const built = path.join(DIST, 'index.html');
  if (!fs.existsSync(built)) return true;
  const builtAt = fs.statSync(built).mtimeMs;
  return SOURCES.some((source) => newestChange(path.join(ROOT, source)) > builtAt);
}

function printWelcome(url: string): void {
  console.log(`
  System Design Lab is running at ${url}

  Read the lessons there, then practise in this terminal with the runner:
    npm run lab                      list the exercises and your progress
    npm run lab -- watch <exercise>  re-run an exercise's tests on every save
    npm run grade -- <exercise>      grade it

  Press Ctrl+C to stop the site.
`);
}

async function listen(port: number, attempts = 10): Promise<Awaited<ReturnType<typeof serveLab>>> {
  try {
    return await serveLab({ dist: DIST, port });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempts <= 1) throw error;
    return listen(port + 1, attempts - 1);
  }
}

async function main(): Promise<void> {
  const env = { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' };
  const port = Number(process.env.PORT || DEFAULT_PORT);
  if (process.argv.includes('--dev')) {
    printWelcome(`http://localhost:${port}/ (dev server: live reload, no search)`);
    recordSite(`http://localhost:${port}`);
    process.on('exit', forgetSite);
    const dev = spawn(process.execPath, [ASTRO, 'dev', '--port', String(port)], { cwd: ROOT, env, stdio: 'inherit' });
    dev.on('exit', (code) => process.exit(code ?? 0));
    return;
  }
  if (siteIsStale()) {
    console.log('Building the course site (about 15 seconds; only when something changed)...');
    const build = spawnSync(process.execPath, [ASTRO, 'build'], {
      cwd: ROOT,
      env: { ...env, NODE_ENV: 'production' },
      stdio: 'inherit',
    });
    if (build.status !== 0) {
      console.error('\nThe site did not build; the error above names the file to fix.');
      process.exit(1);
    }
  }
  const server = await listen(port);
  const url = server.url.replace('127.0.0.1', 'localhost');
  printWelcome(`${url}/`);
  // The runner prints links to this address (src/lab/site-url.ts).
  recordSite(url);
  process.on('exit', forgetSite);
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

await main();

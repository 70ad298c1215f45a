/**
 * What `npm start` serves: the built site, plus a small API under /__lab/ that shows the
 * learner's progress from the runner's state file (.lab/state.json) on the pages.
 *
 *   GET /__lab/progress.json     every exercise's state (ExerciseProgress), now
 *   GET /__lab/events            Server-Sent Events: a `progress` event at once, then one per change
 *   GET /__lab/solution/<slug>   the rendered reference and walkthrough, only once the exercise passes
 *
 * HTML pages get a `<meta name="course-lab">` naming the API. The page script looks for it and
 * does nothing without it, so a static host (no API) makes no request that could fail.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { loadExercises } from '../course/catalog.ts';
import type { Exercise } from '../course/exercise-schema.ts';
import { readState, STATE_FILE, type LabState } from '../lab/state.ts';
import { contentType, listenLocal, resolveStatic, type RunningServer } from './static-server.ts';

export const LAB_API = '/__lab/';

export interface ExerciseProgress {
  status: 'not-started' | 'failing' | 'error' | 'solved';
  passed: number;
  total: number;
  /** The first failing test, and the first line of its message when the verdict had one. */
  firstFailing: { name: string; reason?: string } | null;
  /** The verdict in a few words, as `npm run lab` prints it (says why an error or a type error failed). */
  summary: string | null;
  hintsUsed: number;
  hintsTotal: number;
  /** When it was last graded (ISO 8601), or null when never. */
  at: string | null;
}

export type Progress = Record<string, ExerciseProgress>;

export function progressOf(state: LabState, exercises: readonly Exercise[]): Progress {
  const statuses = { pass: 'solved', fail: 'failing', error: 'error' } as const;
  return Object.fromEntries(
    exercises.map((exercise) => {
      const last = state.lastGrade[exercise.slug];
      // Like `npm run lab`: a starting file nobody has edited is not started, whatever it scored.
      const status = !last || (last.untouched && last.status !== 'pass') ? 'not-started' : statuses[last.status];
      const progress: ExerciseProgress = {
        status,
        passed: last?.passed ?? 0,
        total: last?.total ?? 0,
        firstFailing: last?.firstFailing ?? null,
        summary: last?.summary ?? null,
        hintsUsed: Math.min(state.hintsShown[exercise.slug] ?? 0, exercise.hints.length),
        hintsTotal: exercise.hints.length,
        at: last?.at ?? null,
      };
      return [exercise.slug, progress];
    }),
  );
}

/** The contents of the page's `<template data-course-solution>`, which the build renders. */
export function solutionFragment(html: string): string | null {
  return /<template data-course-solution[^>]*>([\s\S]*?)<\/template>/.exec(html)?.[1] ?? null;
}

export interface LabServerOptions {
  /** The built site. */
  dist: string;
  /** The runner's state file (default: LAB_STATE_FILE or .lab/state.json). */
  stateFile?: string;
  port?: number;
  exercises?: readonly Exercise[];
}

export async function serveLab(options: LabServerOptions): Promise<RunningServer> {
  const { dist, port = 0 } = options;
  const stateFile = path.resolve(options.stateFile ?? STATE_FILE);
  const exercises = options.exercises ?? loadExercises();
  const progress = () => progressOf(readState(stateFile), exercises);
  /** Each open event stream and the progress it was last sent. */
  const streams = new Map<http.ServerResponse, string>();
  let timer: NodeJS.Timeout | undefined;

  const send = (stream: http.ServerResponse, data: string) => {
    if (streams.get(stream) === data) return;
    streams.set(stream, data);
    stream.write(`event: progress\ndata: ${data}\n\n`);
  };

  function api(route: string, response: http.ServerResponse): void {
    if (route === 'progress.json') {
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(JSON.stringify(progress()));
      return;
    }
    if (route === 'events') {
      response.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      // retry: a page left open while `npm start` restarts reconnects within two seconds.
      response.write('retry: 2000\n\n');
      streams.set(response, '');
      send(response, JSON.stringify(progress()));
      response.on('close', () => streams.delete(response));
      return;
    }
    const slug = /^solution\/([\w-]+)\/?$/.exec(route)?.[1];
    const exercise = exercises.find((candidate) => candidate.slug === slug);
    if (!exercise) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(`No such lab route: ${LAB_API}${route}\n`);
      return;
    }
    if (readState(stateFile).lastGrade[exercise.slug]?.status !== 'pass') {
      response.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(
        `Pass ${exercise.slug} first (npm run grade -- ${exercise.slug}); the reference shows once you do.\n`,
      );
      return;
    }
    const page = resolveStatic(dist, `/exercises/${exercise.slug}/`);
    const fragment = page.status === 200 ? solutionFragment(fs.readFileSync(page.file, 'utf8')) : null;
    response.writeHead(fragment === null ? 404 : 200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(fragment ?? 'The built page has no reference solution; rebuild the site.\n');
  }

  const server = http.createServer((request, response) => {
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    } catch {
      response.writeHead(400).end();
      return;
    }
    if (pathname.startsWith(LAB_API)) {
      api(pathname.slice(LAB_API.length), response);
      return;
    }
    const { file, status } = resolveStatic(dist, pathname);
    if (!fs.existsSync(file)) {
      // Only when dist/ has no 404.html: a build that failed half-way, or none yet.
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(`Not found: ${pathname} (is the site built?)\n`);
      return;
    }
    if (path.extname(file) !== '.html') {
      response.writeHead(status, { 'content-type': contentType(file) });
      fs.createReadStream(file).pipe(response);
      return;
    }
    const html = fs
      .readFileSync(file, 'utf8')
      .replace('</head>', `<meta name="course-lab" content="${LAB_API}"></head>`);
    response.writeHead(status, { 'content-type': contentType(file) });
    response.end(html);
  });

  const running = await listenLocal(server, port);
  // The runner writes the state by renaming a temporary file over it, which replaces the file a
  // watcher on the file itself would follow: watch its folder. One grade can fire several
  // events (create, rename), so wait a moment; each stream gets only what changed for it.
  fs.mkdirSync(path.dirname(stateFile), { recursive: true });
  const watcher = fs.watch(path.dirname(stateFile), (_event, name) => {
    if (name && name !== path.basename(stateFile)) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      const now = JSON.stringify(progress());
      for (const stream of streams.keys()) send(stream, now);
    }, 50);
  });

  return {
    url: running.url,
    close: async () => {
      clearTimeout(timer);
      watcher.close();
      for (const stream of streams.keys()) stream.end();
      await running.close();
    },
  };
}

/**
 * The starting files as the course ships them, apart from a learner's work in exercises/.
 * A learner edits exercises/<slug>/<slug>.ts in place, so after they solve an exercise the file
 * there is theirs; the dev check must still prove that the *starting* file fails its suite.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { exercisePaths, ROOT } from './paths.ts';

/** The greppable marker every method of a starting file throws (see STYLE: stubs throw). */
export const TODO_MARKER = "throw new Error('TODO:";

/**
 * The starting file as the course ships it (content/starters/<slug>.ts), or null when that copy
 * is missing. It ships as a file rather than coming from git so that a zip download, which has
 * no history, can still reset an exercise.
 */
export function shippedStub(slug: string): string | null {
  const file = exercisePaths(slug).starter;
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
}

/**
 * Why the shipped copy no longer matches the committed stub in exercises/, or null when they
 * agree or there is no git to ask. A maintainer who edits a stub must copy it to its starter too.
 */
export function starterDrift(slug: string): string | null {
  const paths = exercisePaths(slug);
  let committed: string;
  try {
    committed = execFileSync('git', ['show', `HEAD:${path.relative(ROOT, paths.stub)}`], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return null;
  }
  if (committed === shippedStub(slug)) return null;
  return `${path.relative(ROOT, paths.starter)} differs from the committed ${path.relative(ROOT, paths.stub)}: after editing a stub, run cp ${path.relative(ROOT, paths.stub)} ${path.relative(ROOT, paths.starter)}.`;
}

/**
 * The starting file to check: the one in exercises/ while it is still a stub (untouched, or a
 * maintainer's edit of it), else the shipped one (a learner solved it). Null only when the file
 * in exercises/ is a learner's work and the shipped copy is missing.
 */
export function pristineStub(slug: string): string | null {
  const file = exercisePaths(slug).stub;
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
  if (current?.includes(TODO_MARKER)) return current;
  return shippedStub(slug);
}

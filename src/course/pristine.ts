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

/** The starting file from git: origin's version when there is one, else HEAD's; null without git. */
export function shippedStub(slug: string): string | null {
  const file = path.relative(ROOT, exercisePaths(slug).stub);
  for (const rev of ['origin/HEAD', 'HEAD']) {
    try {
      return execFileSync('git', ['show', `${rev}:${file}`], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      // try the next revision
    }
  }
  return null;
}

/**
 * The starting file to check: the one in exercises/ while it is still a stub (untouched, or a
 * maintainer's edit of it), else the shipped one (a learner solved it). Null when the file in
 * exercises/ is a learner's work and git has no shipped copy (a zip download).
 */
export function pristineStub(slug: string): string | null {
  const file = exercisePaths(slug).stub;
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
  if (current?.includes(TODO_MARKER)) return current;
  return shippedStub(slug);
}

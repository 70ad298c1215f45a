import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, wherever the code is run from. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const EXERCISES_DIR = path.join(ROOT, 'exercises');
export const SOLUTIONS_DIR = path.join(ROOT, 'solutions');
export const METADATA_DIR = path.join(ROOT, 'content', 'exercises');
export const GRADED_DIR = path.join(ROOT, 'test', 'graded');
/** The starting files as shipped, so `lab reset` works without git (a zip download). */
export const STARTERS_DIR = path.join(ROOT, 'content', 'starters');

/**
 * Every path of an exercise, derived from its slug so no file name is typed twice.
 * `implRoot` is the folder being graded: exercises/ by default, solutions/ or a student's copy.
 */
export function exercisePaths(slug: string, implRoot: string = EXERCISES_DIR) {
  return {
    metadata: path.join(METADATA_DIR, `${slug}.json`),
    /** The file a learner edits (or the reference, when implRoot is solutions/). */
    source: path.join(implRoot, slug, `${slug}.ts`),
    stub: path.join(EXERCISES_DIR, slug, `${slug}.ts`),
    /** The shipped copy of the starting file: what `lab reset` writes back. */
    starter: path.join(STARTERS_DIR, `${slug}.ts`),
    readme: path.join(EXERCISES_DIR, slug, 'README.md'),
    solution: path.join(SOLUTIONS_DIR, slug, `${slug}.ts`),
    /** The walkthrough of the reference solution, shown behind a reveal on the site. */
    walkthrough: path.join(SOLUTIONS_DIR, slug, 'README.md'),
    suite: path.join(GRADED_DIR, `${slug}.test.ts`),
  };
}

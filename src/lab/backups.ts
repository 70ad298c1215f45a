/**
 * A learner's work is never lost: every command that replaces their file (reset, restore) saves
 * it first under .lab/backups/<slug>/, and restore brings any saved copy back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { exercisePaths, ROOT } from '../course/paths.ts';

const dirOf = (slug: string) => path.join(ROOT, '.lab', 'backups', slug);

/** Saves `content` as the newest backup of `slug` and returns its path. */
export function backUp(slug: string, content: string): string {
  fs.mkdirSync(dirOf(slug), { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  let file = path.join(dirOf(slug), `${stamp}-${slug}.ts`);
  for (let n = 2; fs.existsSync(file); n++) file = path.join(dirOf(slug), `${stamp}-${n}-${slug}.ts`);
  fs.writeFileSync(file, content);
  return file;
}

/** The backups of `slug`, newest first. */
export function listBackups(slug: string): string[] {
  if (!fs.existsSync(dirOf(slug))) return [];
  return fs
    .readdirSync(dirOf(slug))
    .filter((name) => name.endsWith('.ts'))
    .map((name) => path.join(dirOf(slug), name))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs || b.localeCompare(a));
}

/**
 * Puts backup number `which` (1 = the newest) back in place of the learner's file, after saving
 * the file it replaces. Returns what happened, for the learner to read.
 */
export function restoreBackup(slug: string, which = 1): { restored: string; savedCurrent: string | null } {
  const backups = listBackups(slug);
  const chosen = backups[which - 1];
  if (!chosen)
    throw new Error(
      backups.length
        ? `There are ${backups.length} backup(s) of ${slug}; pick 1 to ${backups.length}.`
        : `There is no backup of ${slug} yet: reset makes one before it replaces your file.`,
    );
  const file = exercisePaths(slug).source;
  const content = fs.readFileSync(chosen, 'utf8');
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
  const savedCurrent = current !== null && current !== content ? backUp(slug, current) : null;
  fs.writeFileSync(file, content);
  return { restored: chosen, savedCurrent };
}

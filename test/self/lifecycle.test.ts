// The learner's lifecycle without git tricks: reset saves their work, restore brings any saved
// copy back, diff compares with the reference, solution waits until they pass (or --yes).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { exercisePaths, ROOT } from '../../src/course/paths.ts';
import { shippedStub } from '../../src/course/pristine.ts';
import { listBackups } from '../../src/lab/backups.ts';
import { readState } from '../../src/lab/state.ts';

// Not cache-aside: test/self/learner-clone.test.ts edits that one, and files run in parallel.
const slug = 'write-behind';
const paths = exercisePaths(slug);
const original = fs.readFileSync(paths.source, 'utf8');
const reference = fs.readFileSync(paths.solution, 'utf8');
let backupsBefore: string[] = [];

const lab = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(ROOT, 'src/lab/cli.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });

beforeEach(() => {
  backupsBefore = listBackups(slug);
});
afterEach(() => {
  fs.writeFileSync(paths.source, original);
  for (const file of listBackups(slug)) if (!backupsBefore.includes(file)) fs.rmSync(file);
});

describe('the learner lifecycle', () => {
  test('reset saves the work first; restore brings it back and saves what it replaces', () => {
    const work = `${reference}\n// my own notes\n`;
    fs.writeFileSync(paths.source, work);

    const reset = lab('reset', slug);
    const afterReset = fs.readFileSync(paths.source, 'utf8');
    const restored = lab('restore', slug);

    expect(reset.stdout).toMatch(
      new RegExp(
        `Your file is saved at \\.lab/backups/${slug}/.*\\.ts \\(npm run lab -- restore ${slug} brings it back\\)`,
      ),
    );
    expect(afterReset).toBe(shippedStub(slug));
    expect(fs.readFileSync(paths.source, 'utf8'), 'restore must bring back the newest backup').toBe(work);
    expect(restored.stdout).toMatch(/Your file as it was is saved at \.lab\/backups\//);
    expect(restored.stdout).toMatch(/Backups, newest first:\n {3}1\. \.lab\/backups\//);
    expect(listBackups(slug).length - backupsBefore.length, 'both the work and the stub it replaced are kept').toBe(2);
  });

  test('restore with no such backup says how many there are, and changes nothing', () => {
    const none = lab('restore', slug, String(listBackups(slug).length + 5));

    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/backup|pick 1 to/);
    expect(fs.readFileSync(paths.source, 'utf8')).toBe(original);
  });

  test('diff shows the lines that differ from the reference, or says there are none', () => {
    const lines = reference.split('\n');
    const at = lines.findIndex((line) => line.includes('await'));
    const edited = [...lines.slice(0, at), '    // mine', ...lines.slice(at + 1)];
    fs.writeFileSync(paths.source, edited.join('\n'));
    const changed = lab('diff', slug);
    fs.writeFileSync(paths.source, reference);
    const same = lab('diff', slug);

    expect(changed.stdout).toContain(`--- solutions/${slug}/${slug}.ts\n+++ exercises/${slug}/${slug}.ts\n@@ `);
    expect(changed.stdout).toContain(`-${lines[at]}\n+    // mine`);
    expect(same.stdout.trim()).toBe(`exercises/${slug}/${slug}.ts is the reference solution, line for line.`);
  });

  test.skipIf(readState().lastGrade[slug]?.status === 'pass')(
    'solution waits until the exercise passes, unless asked with --yes',
    () => {
      const refused = lab('solution', slug);
      const shown = lab('solution', slug, '--yes');

      expect(refused.status).toBe(2);
      expect(refused.stderr).toContain(`npm run lab -- solution ${slug} --yes`);
      expect(shown.stdout).toContain(reference.trim());
      expect(shown.stdout).toMatch(
        new RegExp(
          `The walkthrough \\(why each choice\\): http://localhost:\\d+/exercises/${slug}/#reference-solution`,
        ),
      );
    },
  );
});

describe('a zip download (no git)', () => {
  test('reset brings back the shipped starting file and backs up the work first', () => {
    // The course as a zip holds: no .git, so nothing may come from history.
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-zip-'));
    try {
      for (const entry of ['package.json', 'content', 'exercises', 'solutions', 'src'])
        fs.cpSync(path.join(ROOT, entry), path.join(copy, entry), { recursive: true });
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
      const file = exercisePaths(slug, path.join(copy, 'exercises')).source;
      fs.writeFileSync(file, `${reference}\n// my own notes\n`);

      const reset = spawnSync(process.execPath, [path.join(copy, 'src/lab/cli.ts'), 'reset', slug], {
        cwd: copy,
        encoding: 'utf8',
        env: { ...process.env, GIT_DIR: path.join(copy, 'no-git') },
      });

      expect(reset.stderr).toBe('');
      expect(reset.status).toBe(0);
      expect(fs.readFileSync(file, 'utf8'), 'reset writes the shipped starter').toBe(
        fs.readFileSync(paths.starter, 'utf8'),
      );
      const backups = fs.readdirSync(path.join(copy, '.lab', 'backups', slug));
      expect(backups, 'the work is backed up before it is replaced').toHaveLength(1);
      expect(fs.readFileSync(path.join(copy, '.lab', 'backups', slug, backups[0]!), 'utf8')).toContain(
        '// my own notes',
      );
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
  });
});

// Every npm script starts with src/lab/node-check.cjs: on a Node too old to run the project's
// TypeScript, the learner reads what to install, never a stack trace.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ROOT } from '../../src/course/paths.ts';

const script = path.join(ROOT, 'src', 'lab', 'node-check.cjs');
const { problem } = createRequire(import.meta.url)(script) as {
  problem(version: string, execPath: string): string | null;
};
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  engines: { node: string };
};
// The machine's own old Node, where there is one (this project's machines have Node 20).
const oldNode = ['/usr/bin/node', '/usr/local/bin/node'].find((file) => {
  if (!fs.existsSync(file)) return false;
  const version = spawnSync(file, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
  return problem(version, file) !== null;
});

describe('the Node version check', () => {
  test('accepts 22.18 and newer, refuses older with what to install', () => {
    expect(problem('22.18.0', 'node')).toBeNull();
    expect(problem('24.1.0', 'node')).toBeNull();
    expect(problem('22.12.0', '/usr/bin/node')).toMatchInlineSnapshot(`
      "System Design Lab needs Node.js 22.18 or newer (it runs its TypeScript files directly); this is Node 22.12.0 (/usr/bin/node).
      Install Node 24 LTS, then run the command again:
        with nvm:    nvm install 24 && nvm use 24        (the project has an .nvmrc)
        without it:  mkdir -p ~/.node24 && echo '{"allowScripts":{"node":true}}' > ~/.node24/package.json
                     npm install --prefix ~/.node24 node@24 && export PATH="$HOME/.node24/node_modules/node/bin:$PATH""
    `);
  });

  test('every npm script that runs the project checks first, and engines states the same floor', () => {
    for (const name of ['start', 'lab', 'grade', 'build', 'test', 'check', 'bench']) {
      expect(pkg.scripts[name], `npm run ${name}`).toMatch(/^node src\/lab\/node-check\.cjs && /);
    }
    expect(pkg.engines.node).toBe('>=22.18');
  });

  test.skipIf(!oldNode)('on an old Node, npm start says what to install and exits 1, with no stack trace', () => {
    const run = spawnSync(oldNode!, [script], { encoding: 'utf8' });

    expect(run.status).toBe(1);
    expect(run.stderr.split('\n')[0]).toMatch(/^System Design Lab needs Node\.js 22\.18 or newer/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});

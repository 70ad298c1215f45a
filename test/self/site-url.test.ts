// Links the runner prints are full URLs to the running site, wherever `npm start` serves it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ROOT } from '../../src/course/paths.ts';

const record = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lab-site-')), 'site.json');
/** siteUrl() as a fresh runner process sees it, with the record in a temp file. */
const printed = (pathname: string) =>
  spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { siteUrl } = await import(${JSON.stringify(path.join(ROOT, 'src/lab/site-url.ts'))}); console.log(siteUrl(${JSON.stringify(pathname)}))`,
    ],
    {
      encoding: 'utf8',
      env: { ...process.env, LAB_SITE_RECORD: record, PORT: '' },
    },
  ).stdout.trim();

describe('links to the course site', () => {
  test('without a running site, links use the address npm start serves by default', () => {
    fs.rmSync(record, { force: true });

    expect(printed('/lessons/cache-strategies/')).toBe('http://localhost:4321/lessons/cache-strategies/');
  });

  test('with a site running on another port, links use the address it recorded', () => {
    fs.writeFileSync(record, JSON.stringify({ url: 'http://localhost:4323', pid: process.pid }));

    expect(printed('/exercises/cache-aside/')).toBe('http://localhost:4323/exercises/cache-aside/');
  });

  test('a record left by a site that is no longer running is ignored', () => {
    fs.writeFileSync(record, JSON.stringify({ url: 'http://localhost:4323', pid: 2 ** 22 + 17 }));

    expect(printed('/')).toBe('http://localhost:4321/');
  });
});

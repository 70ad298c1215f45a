import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../../src/course/paths.ts';

/** Builds dist/ once for the whole `site` project; a failed build fails every site test with its message. */
export default function buildSite(): void {
  if (process.env.SITE_DIST) return;
  const started = performance.now();
  const result = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'astro', 'bin', 'astro.mjs'), 'build'], {
    cwd: ROOT,
    encoding: 'utf8',
    // Vitest sets NODE_ENV=test, which would build a development site (no search index).
    env: { ...process.env, NODE_ENV: 'production', ASTRO_TELEMETRY_DISABLED: '1', NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  if (result.status !== 0) {
    // eslint-disable-next-line no-control-regex
    const lines = `${result.stdout}\n${result.stderr}`
      .replace(/\x1b\[[0-9;]*m/g, '')
      .trim()
      .split('\n');
    const firstError = lines.findIndex((line) => /error/i.test(line));
    const output = lines
      .slice(firstError >= 0 ? firstError : -40)
      .slice(0, 40)
      .join('\n');
    throw new Error(`The site does not build (npm run build):\n${output}`);
  }
  console.log(`site built in ${((performance.now() - started) / 1000).toFixed(1)}s`);
}

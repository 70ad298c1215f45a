import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { exercisePaths, ROOT } from '../course/paths.ts';

const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/**
 * Type-checks the graded files with the project's strict settings. Returns the errors per slug
 * (absent when clean). A type error the tests happen not to reach is still a bug in review.
 */
export async function typeCheck(slugs: string[], implRoot: string): Promise<Map<string, string>> {
  const dir = path.join(ROOT, '.lab');
  fs.mkdirSync(dir, { recursive: true });
  const config = path.join(dir, `tsconfig.grade-${process.pid}.json`);
  const files = Object.fromEntries(slugs.map((slug) => [path.resolve(exercisePaths(slug, implRoot).source), slug]));
  fs.writeFileSync(
    config,
    JSON.stringify({ extends: '../tsconfig.json', compilerOptions: { noEmit: true, pretty: false }, include: [], files: Object.keys(files) }),
  );
  const output = await new Promise<string>((resolve) => {
    execFile(process.execPath, [TSC, '-p', config], { cwd: ROOT, timeout: 60_000 }, (_error, stdout, stderr) => resolve(`${stdout}${stderr}`));
  });
  fs.rmSync(config, { force: true });

  const errors = new Map<string, string[]>();
  for (const line of output.split('\n')) {
    const match = /^(.+?)\((\d+),(\d+)\): error (TS\d+: .*)$/.exec(line.trim());
    if (!match) continue;
    const slug = files[path.resolve(ROOT, match[1]!)];
    if (!slug) continue;
    const list = errors.get(slug) ?? [];
    list.push(`  ${path.basename(match[1]!)}:${match[2]}:${match[3]} ${match[4]}`);
    errors.set(slug, list);
  }
  return new Map([...errors].map(([slug, list]) => [slug, list.join('\n')]));
}

/**
 * The test process's entry as plain JavaScript. Node strips a .ts file's types with a
 * WebAssembly build of SWC (amaro) that costs every process ~18 MB; this CLI has it loaded
 * already, so it strips the host's three files once and the test process runs them as .mjs,
 * without amaro (npm run bench measures the difference). The copies live under
 * node_modules/.cache, named by a hash of the sources, so an edited host is stripped again and
 * bare imports (vitest/node) resolve from the project as before. Where that folder cannot be
 * written, the host runs from its .ts source as it is.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import path from 'node:path';
import { ROOT } from '../course/paths.ts';

/** The host and every local module it imports: each may import only the others, by ./name.ts. */
const FILES = ['suite-host.ts', 'report.ts', 'heartbeat.ts'];
export const HOST_SOURCE = path.join(ROOT, 'src', 'lab', 'suite-host.ts');
const CACHE = path.join(ROOT, 'node_modules', '.cache', 'system-design-lab');

let entry: string | undefined;

/** Node warns once per process that stripTypeScriptTypes is experimental: a note for us, not the learner. */
function stripQuietly(source: string): string {
  const emitWarning = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (!String(typeof warning === 'string' ? warning : warning.message).includes('stripTypeScriptTypes'))
      (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return stripTypeScriptTypes(source);
  } finally {
    process.emitWarning = emitWarning;
  }
}

export function hostEntry(): string {
  if (entry) return entry;
  try {
    const sources = FILES.map((file) => fs.readFileSync(path.join(ROOT, 'src', 'lab', file), 'utf8'));
    const hash = createHash('sha256').update(process.version).update(sources.join('\0')).digest('hex').slice(0, 16);
    const dir = path.join(CACHE, `host-${hash}`);
    if (!fs.existsSync(path.join(dir, 'suite-host.mjs'))) {
      const staging = `${dir}.${process.pid}.tmp`;
      fs.mkdirSync(staging, { recursive: true });
      FILES.forEach((file, i) => {
        const js = stripQuietly(sources[i]!).replace(
          /(from\s+['"])\.\/([\w-]+)\.ts(['"])/g,
          (_match, open, name, close) => {
            if (!FILES.includes(`${name}.ts`))
              throw new Error(`${file} imports ./${name}.ts, which host-entry.ts does not strip`);
            return `${open}./${name}.mjs${close}`;
          },
        );
        if (/from\s+['"]\.\.?\//.test(js.replace(/from\s+['"]\.\/[\w-]+\.mjs['"]/g, '')))
          throw new Error(`${file} imports a module outside src/lab: add it to host-entry.ts`);
        fs.writeFileSync(path.join(staging, file.replace(/\.ts$/, '.mjs')), js);
      });
      // Another run may have written the same hash meanwhile: either copy is the same.
      try {
        fs.renameSync(staging, dir);
      } catch {
        fs.rmSync(staging, { recursive: true, force: true });
      }
    }
    entry = path.join(dir, 'suite-host.mjs');
  } catch (error) {
    if (/host-entry\.ts does not strip|outside src\/lab/.test(String(error))) throw error;
    entry = HOST_SOURCE; // a read-only install: run the source, amaro and all
  }
  return entry;
}

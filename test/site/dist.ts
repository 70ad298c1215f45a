import path from 'node:path';
import { ROOT } from '../../src/course/paths.ts';

/**
 * The build the site tests read. SITE_DIST points them at a build made elsewhere
 * (`astro build --outDir …`), and then the global setup does not build dist/ at all.
 */
export const SITE_DIST = process.env.SITE_DIST ? path.resolve(process.env.SITE_DIST) : path.join(ROOT, 'dist');

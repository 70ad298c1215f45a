/**
 * Where the course site is, for links the runner prints: `npm start` records the address it
 * serves on (it moves to the next port when 4321 is taken), and the runner reads it. Without a
 * running site the default address is printed, which `npm start` will serve.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../course/paths.ts';

const RECORD = process.env.LAB_SITE_RECORD ?? path.join(ROOT, '.lab', 'site.json');
export const DEFAULT_SITE = `http://localhost:${process.env.PORT || 4321}`;

/** Called by `npm start` once it serves; forgotten again when it stops. */
export function recordSite(url: string) {
  fs.mkdirSync(path.dirname(RECORD), { recursive: true });
  fs.writeFileSync(RECORD, JSON.stringify({ url: url.replace(/\/$/, ''), pid: process.pid }));
}

export function forgetSite() {
  fs.rmSync(RECORD, { force: true });
}

function alive(pid: number) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The full URL of a course page: siteUrl('/lessons/cache-strategies/'). */
export function siteUrl(pathname: string): string {
  let base = DEFAULT_SITE;
  try {
    const recorded = JSON.parse(fs.readFileSync(RECORD, 'utf8')) as { url?: string; pid?: number };
    if (recorded.url && recorded.pid && alive(recorded.pid)) base = recorded.url;
  } catch {
    // No site running: the default address.
  }
  return `${base}${pathname}`;
}

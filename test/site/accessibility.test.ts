import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadExercises } from '../../src/course/catalog.ts';
import { serveLab } from '../../src/site/lab-server.ts';
import { hasChromium, inCi, launchChromium, missingChromium, seriousViolations } from './browser.ts';
import { SITE_DIST } from './dist.ts';

const MISSING = missingChromium('the accessibility test');

/** Every page of the build, found in dist/ itself so a new page is checked without a list to update. */
function builtPages(dir: string, prefix = '/'): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.isDirectory())
      return entry.name === 'pagefind' ? [] : builtPages(path.join(dir, entry.name), `${prefix}${entry.name}/`);
    if (entry.name === 'index.html') return [prefix];
    return entry.name.endsWith('.html') ? [`${prefix}${entry.name}`] : [];
  });
}

const pages = fs.existsSync(SITE_DIST) ? builtPages(SITE_DIST).sort() : [];
// Two pages at a time: Chromium and axe share two cores with the rest of the suite.
const PARALLEL = 2;

describe.skipIf(!hasChromium && !inCi)('accessibility of every built page', () => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-axe-'));
  let browser: Browser | undefined;
  let lab: Awaited<ReturnType<typeof serveLab>> | undefined;

  beforeAll(async () => {
    if (!hasChromium) return;
    // The runner's state puts every kind of status on the pages: one exercise solved (its
    // solution shown), one failing, the rest not started.
    const [solved, failing] = loadExercises();
    const at = new Date().toISOString();
    const stateFile = path.join(scratch, 'state.json');
    fs.writeFileSync(
      stateFile,
      JSON.stringify({
        hintsShown: { [failing!.slug]: 1 },
        lastGrade: {
          [solved!.slug]: { status: 'pass', passed: 5, total: 5, summary: '5/5 tests', at },
          [failing!.slug]: {
            status: 'fail',
            passed: 1,
            total: 5,
            summary: '1/5 tests',
            firstFailing: { name: 'core > a test', reason: 'expected 1 to be 2' },
            at,
          },
        },
      }),
    );
    lab = await serveLab({ dist: SITE_DIST, stateFile, port: 0 });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await lab?.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  /** Runs axe on each page in `context`, PARALLEL at a time; one line per violation, naming the page. */
  async function audit(context: BrowserContext, scripts: boolean): Promise<string[]> {
    const queue = [...pages];
    const found: string[] = [];
    const worker = async () => {
      const page = await context.newPage();
      if (!scripts) {
        // axe itself needs JavaScript, so the page's own scripts are stripped instead of turning JS off.
        await page.route('**/*', async (route) => {
          if (route.request().resourceType() !== 'document') return route.continue();
          const response = await route.fetch();
          const html = (await response.text()).replace(/<script\b[^>]*>[\s\S]*?<\/script>/g, '');
          return route.fulfill({ response, body: html });
        });
      }
      for (let url = queue.shift(); url !== undefined; url = queue.shift()) {
        await page.goto(`${lab!.url}${url}`, { waitUntil: 'load' });
        // With scripts, wait for the runner's state to reach the page, so axe sees it filled in.
        if (scripts && (await page.locator('[data-lab-status]').count()) > 0)
          await page.locator('[data-lab-status]:not([hidden])').first().waitFor();
        const label = `${url} (JavaScript ${scripts ? 'on' : 'off'})`;
        found.push(...(await seriousViolations(page)).map((line) => `${label}: ${line}`));
      }
      await page.close();
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    return found.sort();
  }

  it('builds the pages it checks', () => {
    expect(pages, `no pages in ${SITE_DIST}`).toContain('/');
    expect(pages).toContain('/404.html');
    expect(pages).toContain('/exercises/');
  });

  it('finds no serious or critical axe violation on any page, with JavaScript on and off', {
    timeout: 150_000,
  }, async () => {
    expect(hasChromium, MISSING).toBe(true);
    const context = await browser!.newContext();

    const violations = [...(await audit(context, true)), ...(await audit(context, false))];

    await context.close();
    expect(violations, `Serious or critical accessibility violations:\n${violations.join('\n')}\n`).toEqual([]);
  });
});

it.runIf(!hasChromium && !inCi)('skips the accessibility test outside CI when chromium is missing', () => {
  console.warn(`${MISSING} Skipped because CI is not set; in CI this fails.`);
});

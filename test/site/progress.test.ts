import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadExercises } from '../../src/course/catalog.ts';
import { exercisePaths, ROOT } from '../../src/course/paths.ts';
import type { LabState, LastGrade } from '../../src/lab/state.ts';
import { serveLab, type Progress } from '../../src/site/lab-server.ts';
import { serveStatic } from '../../src/site/static-server.ts';
import { hasChromium, inCi, launchChromium, missingChromium } from './browser.ts';
import { SITE_DIST } from './dist.ts';

const MISSING = missingChromium('the live progress test');

const exercises = loadExercises();
const [first, second, third] = [exercises[0]!, exercises[1]!, exercises[2]!];
const solutionFile = path.relative(ROOT, exercisePaths(first.slug).solution);
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-progress-'));
const stateFile = path.join(scratch, 'state.json');

let lab: Awaited<ReturnType<typeof serveLab>>;

/** Writes the state the way the runner does: a temporary file renamed over the real one. */
function writeState(state: Partial<LabState>): void {
  const temporary = `${stateFile}.tmp`;
  fs.writeFileSync(temporary, JSON.stringify({ hintsShown: {}, lastGrade: {}, ...state }));
  fs.renameSync(temporary, stateFile);
}

const failing = (passed: number, total: number): LastGrade => ({
  status: 'fail',
  passed,
  total,
  summary: `${passed}/${total} tests`,
  firstFailing: { name: 'core > serves a second read from the cache', reason: 'expected 1 database call, got 2' },
  at: new Date().toISOString(),
});
const passing = (total: number): LastGrade => ({
  status: 'pass',
  passed: total,
  total,
  summary: `${total}/${total} tests`,
  at: new Date().toISOString(),
});

beforeAll(async () => {
  lab = await serveLab({ dist: SITE_DIST, stateFile, port: 0 });
});

afterAll(async () => {
  await lab.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

beforeEach(() => {
  fs.rmSync(stateFile, { force: true });
});

describe('the lab API', () => {
  it('reports every exercise, calling an untouched starting file not started whatever it scored', async () => {
    writeState({
      hintsShown: { [first.slug]: 2 },
      lastGrade: { [first.slug]: failing(3, 7), [second.slug]: { ...failing(0, 7), untouched: true } },
    });

    const progress = (await (await fetch(`${lab.url}/__lab/progress.json`)).json()) as Progress;

    expect(Object.keys(progress)).toEqual(exercises.map((exercise) => exercise.slug));
    expect(progress[first.slug]).toMatchObject({
      status: 'failing',
      passed: 3,
      total: 7,
      hintsUsed: 2,
      hintsTotal: first.hints.length,
      firstFailing: { name: 'core > serves a second read from the cache', reason: 'expected 1 database call, got 2' },
    });
    expect(progress[second.slug]?.status).toBe('not-started');
    expect(progress[third.slug]).toMatchObject({ status: 'not-started', at: null, firstFailing: null });
  });

  it('serves the reference solution only once the exercise passes', async () => {
    writeState({ lastGrade: { [first.slug]: failing(3, 7) } });
    const refused = await fetch(`${lab.url}/__lab/solution/${first.slug}`);

    writeState({ lastGrade: { [first.slug]: passing(7) } });
    const served = await fetch(`${lab.url}/__lab/solution/${first.slug}`);

    expect(refused.status, 'a failing exercise keeps its solution').toBe(403);
    expect(await refused.text()).toContain(`npm run grade -- ${first.slug}`);
    expect(served.status).toBe(200);
    expect(await served.text()).toContain(solutionFile);
    expect((await fetch(`${lab.url}/__lab/solution/no-such-exercise`)).status).toBe(404);
  });
});

describe.skipIf(!hasChromium && !inCi)('live progress in a browser', () => {
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let errors: string[] = [];

  beforeAll(async () => {
    if (hasChromium) browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
  });

  beforeEach(async () => {
    expect(hasChromium, MISSING).toBe(true);
    context = await browser!.newContext();
    page = await context.newPage();
    errors = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => errors.push(`${page.url()}: ${error.message}`));
  });

  afterEach(async () => {
    await context?.close();
    expect(errors, 'console errors').toEqual([]);
  });

  const panel = () => page.locator('[data-lab-status][data-page]');
  const solution = () => page.locator('[data-solution-slot]');

  it('follows each grade on the exercise page without a reload, and shows the solution once it passes', async () => {
    await page.goto(`${lab.url}/exercises/${first.slug}/`);
    await expect.poll(() => panel().textContent()).toContain('Not started');
    expect(await panel().getAttribute('role')).toBe('status');
    expect(await solution().isVisible(), 'no solution before a pass').toBe(false);
    expect(await page.locator('[data-solution-locked]').textContent()).toContain(
      `npm run lab -- solution ${first.slug}`,
    );
    await page.evaluate(() => Object.assign(window, { sameDocument: true }));

    writeState({ hintsShown: { [first.slug]: 2 }, lastGrade: { [first.slug]: failing(3, 7) } });

    await expect.poll(() => panel().textContent()).toContain('Failing: 3 of 7 tests pass.');
    const text = await panel().textContent();
    expect(text).toContain(
      'First failing test: “core > serves a second read from the cache”: expected 1 database call',
    );
    expect(text).toContain(`2 of ${first.hints.length} hints used`);
    expect(await solution().isVisible(), 'a failing exercise keeps its solution').toBe(false);

    writeState({ hintsShown: { [first.slug]: 2 }, lastGrade: { [first.slug]: passing(7) } });

    await expect.poll(() => panel().textContent()).toContain('Solved: all 7 tests pass.');
    await expect.poll(() => solution().isVisible()).toBe(true);
    expect(await solution().textContent()).toContain(solutionFile);
    expect(await page.locator('[data-solution-locked]').isVisible()).toBe(false);
    expect(await page.evaluate(() => 'sameDocument' in window), 'the page updated in place, not by a reload').toBe(
      true,
    );
  });

  it("shows each exercise's state on the exercise index", async () => {
    writeState({
      hintsShown: { [second.slug]: 1 },
      lastGrade: { [first.slug]: passing(7), [second.slug]: failing(2, 5) },
    });

    await page.goto(`${lab.url}/exercises/`);

    const status = (slug: string) => page.locator(`[data-lab-status][data-slug="${slug}"]`);
    await expect
      .poll(() => page.locator('[data-lab-summary]').textContent())
      .toBe(`Your progress from the runner: 1 of ${exercises.length} exercises solved.`);
    expect(await status(first.slug).textContent()).toMatch(/^Solved: all 7 tests pass\./);
    expect(await status(second.slug).textContent()).toBe(
      `Failing: 2 of 5 tests pass. 1 of ${second.hints.length} hints used.`,
    );
    for (const exercise of exercises.slice(2))
      expect(await status(exercise.slug).textContent(), exercise.slug).toMatch(/^Not started/);
  });

  it('shows no status and asks for nothing when served by a static host', async () => {
    const plain = await serveStatic(SITE_DIST);
    const labRequests: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/__lab/')) labRequests.push(request.url());
    });

    try {
      for (const url of [`/exercises/${first.slug}/`, '/exercises/']) {
        await page.goto(`${plain.url}${url}`, { waitUntil: 'load' });

        expect(await page.locator('[data-lab-status]:visible, [data-lab-summary]:visible').count(), url).toBe(0);
        expect(await page.locator('[data-solution-locked]').count()).toBe(url === '/exercises/' ? 0 : 1);
      }
    } finally {
      await plain.close();
    }

    expect(labRequests).toEqual([]);
  });
});

it.runIf(!hasChromium && !inCi)('skips the live progress browser test outside CI when chromium is missing', () => {
  console.warn(`${MISSING} Skipped because CI is not set; in CI this fails.`);
});

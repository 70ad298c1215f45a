import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCourse } from '../../src/course/course.ts';
import { serveStatic } from '../../src/site/static-server.ts';
import { SITE_DIST } from './dist.ts';
import { hasChromium, inCi, launchChromium, missingChromium, seriousViolations } from './browser.ts';

const MISSING = missingChromium('the browser test');

const course = loadCourse();
let browser: Browser | undefined;
let server: Awaited<ReturnType<typeof serveStatic>> | undefined;

describe('the course in a browser', () => {
  beforeAll(async () => {
    if (!hasChromium) return;
    server = await serveStatic(SITE_DIST);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('finds chromium when running in CI', () => {
    expect(hasChromium || !inCi, MISSING).toBe(true);
  });

  it('walks home, a lesson and an exercise, searches for "stampede", with no console errors and no serious axe violations', async (context) => {
    if (!hasChromium) context.skip(`${MISSING} Skipped outside CI.`);
    const page = await browser!.newPage();
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => errors.push(`${page.url()}: ${error.message}`));
    const axe: string[] = [];
    const origin = server!.url;

    await page.goto(`${origin}/`);
    await expect.poll(() => page.locator('h1').first().textContent()).toContain('System Design Lab');
    axe.push(...(await seriousViolations(page)).map((line) => `home: ${line}`));

    const firstLesson = course.lessons[0]!;
    await page.locator(`a[href="/lessons/${firstLesson.slug}/"]`).first().click();
    await page.waitForURL(`**/lessons/${firstLesson.slug}/`);
    expect(await page.locator('h1').first().textContent()).toContain(firstLesson.data.title);
    axe.push(...(await seriousViolations(page)).map((line) => `lesson: ${line}`));

    const exercise = course.exercises[0];
    if (exercise) {
      await page.goto(`${origin}/exercises/${exercise.slug}/`);
      expect(await page.locator('h1').first().textContent()).toContain(exercise.title);
      await page.locator('details.course-hint > summary').first().click();
      await expect.poll(() => page.locator('details.course-hint').first().getAttribute('open')).not.toBeNull();
      axe.push(...(await seriousViolations(page)).map((line) => `exercise: ${line}`));
    }

    await page.locator('button[data-open-modal]').first().click();
    await page.locator('#starlight__search input').fill('stampede');
    const result = page.locator('#starlight__search a[href*="/lessons/stampedes-and-hot-keys/"]').first();
    await result.waitFor({ timeout: 10_000 });
    await result.click();
    await page.waitForURL('**/lessons/stampedes-and-hot-keys/**');

    expect(errors, 'Console errors').toEqual([]);
    expect(axe, 'Serious or critical accessibility violations').toEqual([]);
    await page.close();
  });
});

/**
 * What every simulator's browser test shares: Chromium and a server for the built site, a fresh
 * context per test with the lesson open and the simulator's controls shown, no console errors,
 * and the two ways to see the figure without JavaScript.
 */
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SliderSpec } from '../../src/components/simulators/simulator-script.ts';
import { serveStatic } from '../../src/site/static-server.ts';
import { hasChromium, inCi, launchChromium, missingChromium, seriousViolations } from './browser.ts';
import { SITE_DIST } from './dist.ts';

export interface SimulatorUnderTest {
  /** The current test's page: the lesson with JavaScript on, the simulator's controls shown. */
  readonly page: Page;
  /** The simulator's figure on that page. */
  readonly figure: Locator;
  /** The lesson in a new context with JavaScript off; close it when done. */
  withoutJavaScript(): Promise<{ figure: Locator; close: () => Promise<void> }>;
  /** Checks the current page's figure once its script ran: the note gone, no serious axe violation. */
  expectEnhanced(): Promise<void>;
  /** Checks a figure as the page shows it without JavaScript: no dead controls, the note on what it shows. */
  expectStatic(figure: Locator): Promise<void>;
  /**
   * Reloads the current page with its scripts stripped (axe needs JavaScript, so they cannot just
   * be turned off) and checks that figure, and that axe finds no serious violation on the page.
   */
  expectAccessibleWithoutScripts(): Promise<void>;
}

/** Collects what the page logs as errors and every uncaught exception. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}

/**
 * Steps a slider once with the keyboard, away from whichever end its default is nearer, checks
 * that its output and aria-valuetext follow, and returns the value it now stands for.
 */
export async function stepSlider(figure: Locator, control: SliderSpec): Promise<number> {
  const slider = figure.getByLabel(control.label, { exact: true });
  const start = control.values.indexOf(control.defaultValue);
  const key = start + 1 < control.values.length ? 'ArrowRight' : 'ArrowLeft';
  await slider.press(key);
  const value = control.values[key === 'ArrowRight' ? start + 1 : start - 1]!;

  expect(await figure.locator(`[data-output="${control.name}"]`).textContent(), control.name).toBe(
    control.format(value),
  );
  expect(await slider.getAttribute('aria-valuetext')).toBe(control.format(value));
  return value;
}

/**
 * `${what} in a browser`: the simulator named `simulator` (its data-simulator) on the page at
 * `lesson`. Outside CI a machine without Chromium skips it with a warning; in CI it fails.
 */
export function describeSimulator(
  what: string,
  { simulator, lesson }: { simulator: string; lesson: string },
  tests: (sim: SimulatorUnderTest) => void,
): void {
  const missing = missingChromium(`${what} test`);
  const selector = `[data-simulator="${simulator}"]`;
  let browser: Browser | undefined;
  let server: Awaited<ReturnType<typeof serveStatic>> | undefined;
  let context: BrowserContext | undefined;
  let page: Page | undefined;
  let errors: string[] = [];

  const sim: SimulatorUnderTest = {
    get page() {
      return page!;
    },
    get figure() {
      return page!.locator(selector);
    },
    async withoutJavaScript() {
      const plain = await browser!.newContext({ javaScriptEnabled: false });
      const noScript = await plain.newPage();
      await noScript.goto(`${server!.url}${lesson}`);
      return { figure: noScript.locator(selector), close: () => plain.close() };
    },
    async expectEnhanced() {
      expect(
        await sim.figure.locator('[data-fallback]').isVisible(),
        'the controls replace the no-JavaScript note',
      ).toBe(false);
      expect(await seriousViolations(page!)).toEqual([]);
    },
    async expectStatic(figure) {
      expect(await figure.locator('form').isVisible(), 'no dead controls without JavaScript').toBe(false);
      expect(await figure.locator('[data-fallback]').isVisible(), 'the note says which inputs are shown').toBe(true);
    },
    async expectAccessibleWithoutScripts() {
      await page!.route(`**${lesson}`, async (route) => {
        const response = await route.fetch();
        const html = (await response.text()).replace(/<script\b[^>]*>[\s\S]*?<\/script>/g, '');
        await route.fulfill({ response, body: html });
      });
      await page!.reload();

      expect(await sim.figure.locator('form').isHidden(), 'the simulator script must not have run').toBe(true);
      await sim.expectStatic(sim.figure);
      expect(await seriousViolations(page!)).toEqual([]);
    },
  };

  describe.skipIf(!hasChromium && !inCi)(`${what} in a browser`, () => {
    beforeAll(async () => {
      if (!hasChromium) return;
      server = await serveStatic(SITE_DIST);
      browser = await launchChromium();
    });

    afterAll(async () => {
      await browser?.close();
      await server?.close();
    });

    beforeEach(async () => {
      expect(hasChromium, missing).toBe(true);
      context = await browser!.newContext();
      page = await context.newPage();
      errors = collectErrors(page);
      await page.goto(`${server!.url}${lesson}`);
      await sim.figure.locator('form:not([hidden])').waitFor();
    });

    afterEach(async () => {
      expect(errors, 'the lesson page logged errors to the console').toEqual([]);
      await context?.close();
    });

    tests(sim);
  });

  it.runIf(!hasChromium && !inCi)(`skips ${what} test outside CI when chromium is missing`, () => {
    console.warn(`${missing} Skipped because CI is not set; in CI this fails.`);
  });
}

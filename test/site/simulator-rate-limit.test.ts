import type { Locator } from 'playwright-core';
import { expect, it } from 'vitest';
import {
  busiestHeading,
  busiestText,
  cellView,
  controlText,
  slidingLabel,
  summaryText,
} from '../../src/components/simulators/rate-limit-view.ts';
import {
  DEFAULT_INPUTS,
  type PresetName,
  presetPattern,
  type RateLimitInputs,
  simulateRateLimits,
} from '../../src/site/simulators/rate-limit.ts';
import { seriousViolations } from './browser.ts';
import { describeSimulator } from './simulator-harness.ts';

const LIMITERS = ['fixed', 'sliding', 'bucket'] as const;

type Settings = Omit<RateLimitInputs, 'requestsPerSlot'>;

const texts = (locator: Locator) => locator.evaluateAll((nodes) => nodes.map((node) => node.textContent ?? ''));

/** What the page shows, read the way a sighted reader reads it. */
async function displayed(figure: Locator) {
  const limiters = [];
  for (const limiter of LIMITERS) {
    const total = figure.locator(`tr[data-total="${limiter}"]`);
    limiters.push({
      label: await figure.locator(`tr[data-row="${limiter}"] th`).textContent(),
      cells: await texts(figure.locator(`tr[data-row="${limiter}"] td > [aria-hidden="true"]`)),
      totals: await texts(total.locator('th, td')),
    });
  }
  return {
    summary: await figure.locator('[data-summary]').textContent(),
    busiestHeading: await figure.locator('[data-busiest-heading]').textContent(),
    limiters,
  };
}

/** The same, computed from the model for these inputs. */
function expected(settings: Settings, requestsPerSlot: number[]) {
  const result = simulateRateLimits({ ...settings, requestsPerSlot });
  return {
    summary: summaryText(settings, result),
    busiestHeading: busiestHeading(settings.windowSeconds),
    limiters: LIMITERS.map((limiter) => {
      const label =
        limiter === 'fixed' ? 'Fixed window' : limiter === 'bucket' ? 'Token bucket' : slidingLabel(settings.sliding);
      const outcome = result[limiter];
      return {
        label,
        cells: requestsPerSlot.map((arrived, second) => cellView(arrived, outcome.admittedPerSlot[second]!).text),
        totals: [
          label,
          String(outcome.admitted),
          String(outcome.rejected),
          busiestText(outcome.busiestWindowAdmitted, settings.limitPerWindow),
        ],
      };
    }),
  };
}

const requestButtons = (figure: Locator) => figure.locator('tr[data-row="requests"] td button');
const shownRequests = async (figure: Locator) => (await texts(requestButtons(figure))).map((text) => Number(text || 0));

describeSimulator(
  'the rate-limit simulator',
  { simulator: 'rate-limit', lesson: '/lessons/backpressure-and-rate-limiting/' },
  (sim) => {
    it('starts from the model’s defaults: the burst at a window boundary', async () => {
      const { figure } = sim;
      const requests = presetPattern('boundary', DEFAULT_INPUTS.limitPerWindow, DEFAULT_INPUTS.windowSeconds);

      expect(await shownRequests(figure)).toEqual(requests);
      expect(await displayed(figure)).toEqual(expected(DEFAULT_INPUTS, requests));
      await sim.expectEnhanced();
    });

    it('recomputes every limiter when each range moves, by fill and by arrow key', async () => {
      const { figure } = sim;
      const requests = presetPattern('boundary', DEFAULT_INPUTS.limitPerWindow, DEFAULT_INPUTS.windowSeconds);
      const settings: Settings = { ...DEFAULT_INPUTS };
      const steps: [keyof typeof controlText, string, number][] = [
        ['limitPerWindow', '3', 3],
        ['windowSeconds', '7', 7],
        ['bucketCapacity', '2', 2],
        ['refillPerSecond', '0.3', 0.3],
      ];

      for (const [name, value, number] of steps) {
        await figure.locator(`input[name="${name}"]`).fill(value);
        settings[name] = number;

        expect(await figure.locator(`[data-output="${name}"]`).textContent()).toBe(controlText[name](number));
        expect(await displayed(figure), `after setting ${name} to ${value}`).toEqual(expected(settings, requests));
      }

      await figure.locator('input[name="refillPerSecond"]').press('ArrowRight');
      settings.refillPerSecond = 0.4;

      expect(await figure.locator('[data-output="refillPerSecond"]').textContent()).toBe('0.4 tokens a second');
      expect(await displayed(figure)).toEqual(expected(settings, requests));
    });

    it('runs the sliding window as a counter when the select says so', async () => {
      const { figure } = sim;
      await figure.locator('button[data-preset="steady"]').click();
      await figure.locator('select[name="sliding"]').selectOption('counter');

      const settings: Settings = { ...DEFAULT_INPUTS, sliding: 'counter' };

      expect(await displayed(figure)).toEqual(expected(settings, presetPattern('steady', 5, 5)));
      expect(await figure.locator('tr[data-row="sliding"] th').textContent()).toBe('Sliding counter');
    });

    it('fills the timeline from each preset, using the limit and window set at the time', async () => {
      const { figure } = sim;
      await figure.locator('input[name="windowSeconds"]').fill('8');
      await figure.locator('input[name="limitPerWindow"]').fill('7');
      const settings: Settings = { ...DEFAULT_INPUTS, windowSeconds: 8, limitPerWindow: 7 };

      for (const preset of ['steady', 'bursts', 'clear', 'boundary'] as PresetName[]) {
        await figure.locator(`button[data-preset="${preset}"]`).click();
        const requests = presetPattern(preset, 7, 8);

        expect(await shownRequests(figure), preset).toEqual(requests);
        expect(await displayed(figure), preset).toEqual(expected(settings, requests));
      }
    });

    it('lets the learner draw requests by mouse and by keyboard', async () => {
      const { page, figure } = sim;
      await figure.locator('button[data-preset="clear"]').click();
      const requests = presetPattern('clear', 5, 5);
      const first = requestButtons(figure).nth(0);

      await first.click();
      await first.click();
      await first.click();
      requests[0] = 3;

      expect(await first.getAttribute('aria-label')).toBe('Second 0: 3 requests');
      expect(await displayed(figure)).toEqual(expected(DEFAULT_INPUTS, requests));

      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('7');
      await page.keyboard.press('ArrowUp');
      requests[1] = 8;
      await page.keyboard.press('End');
      await page.keyboard.press('ArrowUp');
      await page.keyboard.press('ArrowUp');
      await page.keyboard.press('ArrowDown');
      requests[19] = 1;

      expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe(
        'Second 19: 1 request',
      );
      expect(await shownRequests(figure)).toEqual(requests);
      expect(await displayed(figure)).toEqual(expected(DEFAULT_INPUTS, requests));
      expect(
        await requestButtons(figure).evaluateAll((buttons) => buttons.map((b) => (b as HTMLElement).tabIndex)),
      ).toEqual(requests.map((_, second) => (second === 19 ? 0 : -1)));

      await page.keyboard.press('Home');
      await page.keyboard.press('Delete');
      requests[0] = 0;
      for (let i = 0; i < 10; i++) await requestButtons(figure).nth(2).click();
      // Ten clicks: 1 … 9, then back to 0.

      expect(await shownRequests(figure)).toEqual(requests);
      expect(await displayed(figure)).toEqual(expected(DEFAULT_INPUTS, requests));
      expect(await seriousViolations(page)).toEqual([]);
    });

    it('shows the default result without JavaScript, with no controls', async () => {
      const noScript = await sim.withoutJavaScript();
      const figure = noScript.figure;
      const requests = presetPattern('boundary', DEFAULT_INPUTS.limitPerWindow, DEFAULT_INPUTS.windowSeconds);

      await sim.expectStatic(figure);
      expect((await texts(figure.locator('tr[data-row="requests"] td'))).map((text) => Number(text || 0))).toEqual(
        requests,
      );
      expect(await displayed(figure)).toEqual(expected(DEFAULT_INPUTS, requests));
      await noScript.close();
    });

    it('has no serious accessibility violations in its no-JavaScript form', async () => {
      await sim.expectAccessibleWithoutScripts();
    });
  },
);

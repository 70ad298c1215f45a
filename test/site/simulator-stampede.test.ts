import type { Locator } from 'playwright-core';
import { expect, it } from 'vitest';
import {
  STAMPEDE_CONTROLS,
  STAMPEDE_DEFAULTS,
  type StampedeInputs,
  stampede,
  stampedeTable,
  xfetchNotes,
} from '../../src/site/simulators/stampede.ts';
import { timelineDescription, timelineSvg } from '../../src/site/simulators/stampede-timeline.ts';
import { seriousViolations } from './browser.ts';
import { describeSimulator, stepSlider } from './simulator-harness.ts';

const tickClasses = (markup: string) => [...markup.matchAll(/class="tick ([\w-]+)"/g)].map((match) => match[1]);

/** The table, the notes and the timeline as the page shows them. */
async function displayed(on: Locator) {
  return {
    rows: await on
      .locator('tbody tr')
      .evaluateAll((rows) => rows.map((row) => [...row.children].map((cell) => cell.textContent?.trim() ?? ''))),
    notes: await on.locator('[data-notes] li').allTextContents(),
    description: await on.locator('[data-chart] desc').textContent(),
    ticks: tickClasses(await on.locator('[data-chart]').innerHTML()),
  };
}

/** The same, from the model. */
function expected(inputs: StampedeInputs) {
  const result = stampede(inputs);
  return {
    rows: stampedeTable(result).map((row) => [row.label, row.loads, row.misses]),
    notes: xfetchNotes(result),
    description: timelineDescription(inputs),
    ticks: tickClasses(timelineSvg(inputs, 'stampede-timeline')),
  };
}

describeSimulator(
  'the stampede simulator',
  { simulator: 'stampede', lesson: '/lessons/stampedes-and-hot-keys/' },
  (sim) => {
    it('shows the model’s numbers and timeline for the default inputs, and no serious axe violation', async () => {
      expect(await displayed(sim.figure)).toEqual(expected(STAMPEDE_DEFAULTS));
      await sim.expectEnhanced();
    });

    it('recomputes the table, notes and timeline from the model as each slider moves', async () => {
      const { page, figure } = sim;
      const inputs = { ...STAMPEDE_DEFAULTS };

      for (const control of STAMPEDE_CONTROLS) {
        inputs[control.name] = await stepSlider(figure, control);

        expect(await displayed(figure), `after moving ${control.name}`).toEqual(expected(inputs));
      }

      // The slowest read rate: the median early refresh lands after expiry, and the timeline says so.
      await figure.getByLabel('Reads of the key', { exact: true }).fill('0');
      inputs.readsPerSecond = STAMPEDE_CONTROLS[0]!.values[0]!;
      expect(await displayed(figure), 'at one read a second').toEqual(expected(inputs));
      expect(await figure.locator('[data-chart] desc').textContent()).toContain('lands after it, so some reads miss');
      expect(await seriousViolations(page)).toEqual([]);
    });

    it('shows the build-time table and timeline, no controls and no serious axe violation without JavaScript', async () => {
      const plain = await sim.withoutJavaScript();
      const still = plain.figure;

      await sim.expectStatic(still);
      expect(await still.locator('[data-chart] svg').isVisible()).toBe(true);
      expect(await displayed(still)).toEqual(expected(STAMPEDE_DEFAULTS));
      await plain.close();

      await sim.expectAccessibleWithoutScripts();
    });
  },
);

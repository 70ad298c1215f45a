import type { Locator } from 'playwright-core';
import { expect, it } from 'vitest';
import {
  FANOUT_CONTROLS,
  FANOUT_DEFAULTS,
  type FanoutInputs,
  fanout,
  fanoutTable,
  fanoutVerdict,
} from '../../src/site/simulators/fanout.ts';
import { seriousViolations } from './browser.ts';
import { describeSimulator, stepSlider } from './simulator-harness.ts';

/** The table and sentence as the page shows them. */
async function displayed(figure: Locator) {
  return {
    rows: await figure
      .locator('tbody tr')
      .evaluateAll((rows) => rows.map((row) => [...row.children].map((cell) => cell.textContent?.trim() ?? ''))),
    verdict: (await figure.locator('[data-verdict]').textContent())?.trim(),
  };
}

/** The same, from the model. */
function expected(inputs: FanoutInputs) {
  const result = fanout(inputs);
  return {
    rows: fanoutTable(result).map((row) => [row.label, row.cells.push, row.cells.pull, row.cells.hybrid]),
    verdict: fanoutVerdict(inputs, result),
  };
}

describeSimulator('the fan-out simulator', { simulator: 'fanout', lesson: '/lessons/fan-out-feeds/' }, (sim) => {
  it('shows the model’s numbers for the default inputs, and no serious axe violation', async () => {
    expect(await displayed(sim.figure)).toEqual(expected(FANOUT_DEFAULTS));
    await sim.expectEnhanced();
  });

  it('recomputes the table from the model as each slider moves', async () => {
    const { page, figure } = sim;
    const inputs = { ...FANOUT_DEFAULTS };

    for (const control of FANOUT_CONTROLS) {
      inputs[control.name] = await stepSlider(figure, control);

      expect(await displayed(figure), `after moving ${control.name}`).toEqual(expected(inputs));
    }

    // Jump to the ends too: fill sets a range input's value and fires input, as a drag does.
    const followers = figure.getByLabel('Followers of the author who posts', { exact: true });
    await followers.fill('0');
    inputs.authorFollowers = FANOUT_CONTROLS[0]!.values[0]!;
    expect(await displayed(figure), 'an author with the fewest followers is pushed').toEqual(expected(inputs));
    expect(fanout(inputs).authorIsCelebrity).toBe(false);
    expect(await seriousViolations(page)).toEqual([]);
  });

  it('shows the build-time table, no controls and no serious axe violation without JavaScript', async () => {
    const plain = await sim.withoutJavaScript();
    const still = plain.figure;

    await sim.expectStatic(still);
    expect(await still.locator('table').isVisible()).toBe(true);
    expect(
      await still
        .locator('tbody tr')
        .evaluateAll((rows) => rows.map((row) => [...row.children].map((cell) => cell.textContent?.trim() ?? ''))),
    ).toEqual(expected(FANOUT_DEFAULTS).rows);
    await plain.close();

    await sim.expectAccessibleWithoutScripts();
  });
});

import type { Locator } from 'playwright-core';
import { expect, it } from 'vitest';
import {
  controlText,
  figureDescription,
  resultRows,
  ringFigure,
  summaryText,
} from '../../src/components/simulators/hashing-view.ts';
import { DEFAULT_INPUTS, type HashingInputs, simulateHashing } from '../../src/site/simulators/hashing.ts';
import { seriousViolations } from './browser.ts';
import { describeSimulator } from './simulator-harness.ts';

/** What the page shows: the summary, the table, the figure's description and its dots. */
async function displayed(figure: Locator) {
  return {
    summary: await figure.locator('[data-summary]').textContent(),
    rows: await figure
      .locator('[data-rows] tr')
      .evaluateAll((rows) => rows.map((row) => [...row.children].map((cell) => cell.textContent ?? ''))),
    description: await figure.locator('[data-desc]').textContent(),
    dots: await figure
      .locator('[data-figure] circle:not(.ring)')
      .evaluateAll((dots) => dots.map((dot) => dot.getAttribute('class'))),
    arcs: await figure.locator('[data-figure] path.arcs').getAttribute('d'),
  };
}

/** The same, from the model. The dots and arcs come from the markup the figure renders. */
function expected(inputs: HashingInputs) {
  const result = simulateHashing(inputs);
  const markup = ringFigure(result);
  return {
    summary: summaryText(inputs, result),
    rows: resultRows(result),
    description: figureDescription(inputs, result),
    dots: [...markup.matchAll(/<circle [^>]*class="(moved|stayed)"/g)].map((match) => match[1]),
    arcs: /class="arcs"/.test(markup) ? /<path d="([^"]*)" class="arcs"/.exec(markup)![1] : null,
  };
}

describeSimulator('the hashing simulator', { simulator: 'hashing', lesson: '/lessons/scaling-data/' }, (sim) => {
  it('starts from the model’s defaults, the same numbers as the static page', async () => {
    expect(await displayed(sim.figure)).toEqual(expected(DEFAULT_INPUTS));
    await sim.expectEnhanced();
  });

  it('recomputes the moves when each control changes', async () => {
    const { page, figure } = sim;
    const inputs: HashingInputs = { ...DEFAULT_INPUTS };

    await figure.locator('input[name="nodeCount"]').fill('3');
    inputs.nodeCount = 3;

    expect(await figure.locator('[data-output="nodeCount"]').textContent()).toBe(controlText.nodeCount(3));
    expect(await displayed(figure)).toEqual(expected(inputs));

    await figure.locator('input[name="nodeCount"]').press('ArrowRight');
    inputs.nodeCount = 4;

    expect(await figure.locator('[data-output="nodeCount"]').textContent()).toBe('4 (A–D)');
    expect(await displayed(figure)).toEqual(expected(inputs));

    await figure.locator('input[name="virtualNodes"]').fill('1');
    inputs.virtualNodes = 1;

    expect(await figure.locator('[data-output="virtualNodes"]').textContent()).toBe(controlText.virtualNodes(1));
    expect(await displayed(figure)).toEqual(expected(inputs));

    await figure.locator('input[name="virtualNodes"]').press('ArrowRight');
    inputs.virtualNodes = 2;

    expect(await displayed(figure)).toEqual(expected(inputs));

    await figure.locator('select[name="change"]').selectOption('remove');
    inputs.change = 'remove';

    expect(await displayed(figure)).toEqual(expected(inputs));
    expect(await figure.locator('[data-summary]').textContent()).toContain('Removing D from A–D');

    await figure.locator('select[name="keyCount"]').selectOption('100000');
    inputs.keyCount = 100_000;

    expect(await displayed(figure)).toEqual(expected(inputs));
    expect(await seriousViolations(page)).toEqual([]);
  });

  it('shows the default result without JavaScript, with no controls', async () => {
    const noScript = await sim.withoutJavaScript();
    const figure = noScript.figure;

    await sim.expectStatic(figure);
    expect(await displayed(figure)).toEqual(expected(DEFAULT_INPUTS));
    await noScript.close();
  });

  it('has no serious accessibility violations in its no-JavaScript form', async () => {
    await sim.expectAccessibleWithoutScripts();
  });
});

import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SITE_DIST } from './dist.ts';
import { loadQuiz } from '../../src/course/quiz.ts';
import { QUIZZES, quizLength } from '../../src/course/quiz-schema.ts';
import { serveStatic } from '../../src/site/static-server.ts';
import { hasChromium, inCi, launchChromium, missingChromium, seriousViolations } from './browser.ts';

const MISSING = missingChromium('the quiz browser test');

const allQuestions = loadQuiz();
const rightIndex = (id: string) =>
  allQuestions.find((question) => question.id === id)!.choices.findIndex((choice) => choice.correct);
const wrongIndex = (id: string) => (rightIndex(id) + 1) % 4;

let browser: Browser | undefined;
let server: Awaited<ReturnType<typeof serveStatic>> | undefined;
let context: BrowserContext | undefined;
let page: Page;
let errors: string[] = [];

/** Picks choice `index` of question `id` the way a user does (clicking its label) and checks it. */
async function answer(id: string, index: number): Promise<void> {
  const form = page.locator(`form[data-question="${id}"]`);
  await form.locator(`label[for="${id}--${index}"]`).click();
  await form.getByRole('button', { name: 'Check answer' }).click();
}

const overallScore = () => page.locator('.quiz-toolbar [data-score]').textContent();

describe.skipIf(!hasChromium && !inCi).each(QUIZZES)('the $title page in a browser', (quizPage) => {
  const sections = quizPage.sections;
  const total = quizLength(quizPage);
  const quiz = allQuestions.filter((question) => sections.some((section) => section.id === question.section));

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
    expect(hasChromium, MISSING).toBe(true);
    // A fresh context per test: empty localStorage, so no test sees another's progress.
    context = await browser!.newContext();
    page = await context.newPage();
    errors = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${server!.url}${quizPage.path}`);
    await page.locator('.quiz.quiz-enhanced').waitFor();
  });

  afterEach(async () => {
    expect(errors, 'the quiz page logged errors to the console').toEqual([]);
    await context?.close();
  });

  it('scores full marks when every question is answered correctly, per section and overall', async () => {
    for (const question of quiz) await answer(question.id, rightIndex(question.id));

    expect(await overallScore()).toBe(`${total} / ${total} correct`);
    for (const section of sections) {
      expect(await page.locator(`.quiz-section-score [data-score="${section.id}"]`).textContent()).toBe(
        `${section.count} / ${section.count} correct`,
      );
    }
    expect(await page.locator('.quiz-missed').isVisible(), 'nothing was missed, so there is nothing to review').toBe(
      false,
    );
    expect(await seriousViolations(page)).toEqual([]);
  });

  it('shows the explanation for a wrong answer, counts it as missed, and lets the learner retry it', async () => {
    const id = quiz[0]!.id;

    await answer(id, wrongIndex(id));

    const form = page.locator(`form[data-question="${id}"]`);
    expect(await form.locator('.quiz-feedback').textContent()).toMatch(/^Not quite/);
    expect(await form.locator('details').getAttribute('open'), 'the explanation opens after an answer').not.toBeNull();
    expect(await form.locator('details .quiz-lesson-link').isVisible()).toBe(true);
    expect(await overallScore()).toBe(`0 / ${total} correct, 1 answered`);
    expect(await page.locator(`.quiz-missed-list a[href="#${id}"]`).count()).toBe(1);
    expect(await seriousViolations(page), 'after a wrong answer').toEqual([]);

    await page.getByRole('button', { name: 'Retry missed questions' }).click();
    expect(await form.locator('input:checked').count(), 'retry clears the missed answer').toBe(0);
    await answer(id, rightIndex(id));
    expect(await overallScore()).toBe(`1 / ${total} correct, 1 answered`);
  });

  it('keeps progress across a reload, and clearing it resets the score', async () => {
    const [first, second] = [quiz[0]!.id, quiz[10]!.id];
    await answer(first, rightIndex(first));
    await answer(second, wrongIndex(second));

    await page.reload();
    await page.locator('.quiz.quiz-enhanced').waitFor();

    expect(await overallScore()).toBe(`1 / ${total} correct, 2 answered`);
    expect(await page.locator(`#${second}--${wrongIndex(second)}`).isChecked()).toBe(true);

    await page.locator('.quiz-toolbar').getByRole('button', { name: 'Clear progress' }).click();
    expect(await overallScore()).toBe(`0 / ${total} correct, 0 answered`);
    await page.reload();
    await page.locator('.quiz.quiz-enhanced').waitFor();
    expect(await overallScore(), 'cleared progress stays cleared after a reload').toBe(
      `0 / ${total} correct, 0 answered`,
    );
    expect(await page.locator('input:checked').count()).toBe(0);
  });

  it("keeps this quiz's progress when the learner clears another quiz", async () => {
    const id = quiz[0]!.id;
    const other = QUIZZES.find((candidate) => candidate.id !== quizPage.id)!;
    await answer(id, rightIndex(id));

    await page.goto(`${server!.url}${other.path}`);
    await page.locator('.quiz.quiz-enhanced').waitFor();
    await page.locator('.quiz-toolbar').getByRole('button', { name: 'Clear progress' }).click();
    await page.goto(`${server!.url}${quizPage.path}`);
    await page.locator('.quiz.quiz-enhanced').waitFor();

    expect(await overallScore(), 'each quiz keeps its own progress').toBe(`1 / ${total} correct, 1 answered`);
  });

  it('shows every answer and explanation in a disclosure when JavaScript is off', async () => {
    const noScript = await browser!.newContext({ javaScriptEnabled: false });
    const plain = await noScript.newPage();

    await plain.goto(`${server!.url}${quizPage.path}`);

    expect(await plain.locator('form[data-question] details summary').count()).toBe(total);
    expect(
      await plain.getByRole('button', { name: 'Check answer' }).count(),
      'no dead buttons without JavaScript',
    ).toBe(0);
    const details = plain.locator('form[data-question] details').first();
    await details.locator('summary').click();
    expect(await details.textContent()).toContain('Answer:');
    await noScript.close();
  });

  it('has no serious accessibility violations in its no-JavaScript form', async () => {
    // axe needs JavaScript, so serve the page with its own scripts stripped instead of turning JS off.
    await page.route(`**${quizPage.path}`, async (route) => {
      const response = await route.fetch();
      const html = (await response.text()).replace(/<script\b[^>]*>[\s\S]*?<\/script>/g, '');
      await route.fulfill({ response, body: html });
    });

    await page.reload();

    expect(await page.locator('.quiz-enhanced').count(), 'the quiz script must not have run').toBe(0);
    expect(await seriousViolations(page)).toEqual([]);
  });
});

it.runIf(!hasChromium && !inCi)('skips the quiz browser test outside CI when chromium is missing', () => {
  console.warn(`${MISSING} Skipped because CI is not set; in CI this fails.`);
});

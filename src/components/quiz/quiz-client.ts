/// <reference lib="dom" />
/*
 * Progressive enhancement for the quiz pages (/quiz/ and /quiz/<id>/). The server-rendered page already works without
 * JavaScript (every answer sits in a <details>); this script hides those answers until the
 * learner checks one, scores per section and overall, lists missed questions for review and
 * keeps progress in localStorage. Plain DOM code on purpose: the page's budget is 15 KB gzipped.
 */

/**
 * Where a quiz's answers are kept. Each quiz has its own key, so clearing one quiz (or loading
 * a page that does not know another quiz's ids) never touches the other's progress; the first
 * quiz keeps the key it had before there were two.
 */
function storageKey(quizId: string | undefined): string {
  return !quizId || quizId === 'caching' ? 'system-design-lab:quiz:v1' : `system-design-lab:quiz:${quizId}:v1`;
}

/** What we persist: the choice index picked for each answered question id. */
type Answers = Record<string, number>;

interface Question {
  id: string;
  section: string;
  correct: number;
  form: HTMLFormElement;
  inputs: HTMLInputElement[];
  feedback: HTMLElement;
  details: HTMLDetailsElement;
  summary: HTMLElement;
  check: HTMLButtonElement;
}

function readAnswers(key: string): Answers {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(key) ?? '{}');
    return parsed && typeof parsed === 'object' ? (parsed as Answers) : {};
  } catch {
    // Storage disabled (private mode, a locked-down browser) or corrupt: start fresh.
    return {};
  }
}

function writeAnswers(key: string, answers: Answers): void {
  try {
    if (Object.keys(answers).length === 0) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(answers));
  } catch {
    // Progress simply is not kept; the quiz still works for this visit.
  }
}

function must<T extends Element>(root: ParentNode, selector: string): T {
  const element = root.querySelector<T>(selector);
  if (!element) throw new Error(`quiz page: missing ${selector}`);
  return element;
}

function init(root: HTMLElement): void {
  const questions: Question[] = [...root.querySelectorAll<HTMLFormElement>('form[data-question]')].map((form) => ({
    id: form.dataset.question ?? '',
    section: form.dataset.section ?? '',
    correct: Number(form.dataset.correct),
    form,
    inputs: [...form.querySelectorAll<HTMLInputElement>('input[type=radio]')],
    feedback: must(form, '.quiz-feedback'),
    details: must(form, 'details'),
    summary: must(form, 'summary'),
    check: must(form, 'button[type=submit]'),
  }));
  const byId = new Map(questions.map((question) => [question.id, question]));
  const key = storageKey(root.dataset.quiz);
  const answers = readAnswers(key);
  for (const id of Object.keys(answers)) {
    const question = byId.get(id);
    const choice = answers[id];
    if (!question || typeof choice !== 'number' || !question.inputs[choice]) delete answers[id];
  }

  const results = must<HTMLElement>(root, '.quiz-results');
  const missedList = must<HTMLElement>(results, '.quiz-missed-list');
  const missedBlock = must<HTMLElement>(results, '.quiz-missed');
  const retry = must<HTMLButtonElement>(results, '.quiz-retry');

  function render(question: Question): void {
    const choice = answers[question.id];
    const answered = choice !== undefined;
    const right = choice === question.correct;
    question.form.dataset.state = answered ? (right ? 'right' : 'wrong') : '';
    question.check.hidden = answered;
    question.details.open = answered;
    question.summary.textContent = answered ? 'Explanation' : 'Show the answer';
    question.inputs.forEach((input, index) => {
      input.checked = index === choice;
      input.disabled = answered;
      const label = input.labels?.[0];
      label?.querySelector('.quiz-mark')?.remove();
      if (!answered || !label || (index !== question.correct && index !== choice)) return;
      const mark = document.createElement('span');
      mark.className = 'quiz-mark';
      mark.textContent = index === question.correct ? ' ✓ right answer' : ' ✗ your answer';
      label.append(mark);
    });
    question.feedback.textContent = !answered
      ? ''
      : right
        ? 'Correct.'
        : `Not quite: the answer is “${question.inputs[question.correct]?.labels?.[0]?.querySelector('.quiz-choice-text')?.textContent ?? ''}”. The explanation below says why.`;
  }

  function renderScores(): void {
    const score = (list: Question[]) => ({
      answered: list.filter((question) => answers[question.id] !== undefined).length,
      right: list.filter((question) => answers[question.id] === question.correct).length,
      total: list.length,
    });
    for (const output of root.querySelectorAll<HTMLElement>('[data-score]')) {
      const section = output.dataset.score;
      const { answered, right, total } = score(
        section ? questions.filter((question) => question.section === section) : questions,
      );
      output.textContent = `${right} / ${total} correct${answered < total ? `, ${answered} answered` : ''}`;
    }
    missedList.replaceChildren(
      ...questions
        .filter((question) => answers[question.id] !== undefined && answers[question.id] !== question.correct)
        .map((question) => {
          const item = document.createElement('li');
          const link = document.createElement('a');
          link.href = `#${question.id}`;
          link.textContent = question.form.querySelector('.quiz-prompt')?.textContent ?? question.id;
          item.append(link);
          const lesson = question.details.querySelector<HTMLAnchorElement>('a.quiz-lesson-link');
          if (lesson) item.append(' Review: ', lesson.cloneNode(true));
          return item;
        }),
    );
    missedBlock.hidden = missedList.childElementCount === 0;
    retry.hidden = missedBlock.hidden;
  }

  function save(): void {
    writeAnswers(key, answers);
    renderScores();
  }

  for (const question of questions) {
    question.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const picked = question.inputs.findIndex((input) => input.checked);
      if (picked < 0) {
        question.feedback.textContent = 'Pick an answer first.';
        return;
      }
      answers[question.id] = picked;
      render(question);
      save();
      // The button just vanished; move focus to the verdict so keyboard and screen-reader users
      // hear it and continue from the explanation.
      question.feedback.focus();
    });
    render(question);
  }

  retry.addEventListener('click', () => {
    const missed = questions.filter(
      (question) => answers[question.id] !== undefined && answers[question.id] !== question.correct,
    );
    for (const question of missed) {
      delete answers[question.id];
      render(question);
    }
    save();
    missed[0]?.inputs[0]?.focus();
  });

  for (const clear of root.querySelectorAll<HTMLButtonElement>('.quiz-clear')) {
    clear.addEventListener('click', () => {
      for (const id of Object.keys(answers)) delete answers[id];
      questions.forEach(render);
      save();
      const status = must<HTMLElement>(root, '.quiz-status');
      status.textContent = 'Progress cleared.';
    });
  }

  root.classList.add('quiz-enhanced');
  for (const element of root.querySelectorAll<HTMLElement>('[data-needs-js]')) element.hidden = false;
  renderScores();
}

const root = document.querySelector<HTMLElement>('.quiz');
if (root) init(root);

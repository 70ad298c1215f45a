/**
 * The test process behind grade and watch: one warm Vitest (its Node API), driven over IPC by
 * the runner in the parent (suite-runner.ts). It never decides a verdict and never enforces a
 * time limit: a learner's loop can starve this process's test threads, so the parent watches
 * the heartbeat relayed from here and kills this whole process group when it stops.
 *
 * Parent → host: HostCommand (the suites to run). Host → parent: HostMessage (below).
 */
import { BroadcastChannel, type Worker } from 'node:worker_threads';
import path from 'node:path';
import { createVitest, type Reporter, type TestCase, type TestModule, type TestSpecification } from 'vitest/node';
import type { UserConsoleLog } from 'vitest';
import { describeError, type CapturedOutput, type ReportedModule, type ReportedTest, captureOutput } from './report.ts';
import { HEARTBEAT_CHANNEL, type Heartbeat } from './heartbeat.ts';

export type HostMessage =
  | { type: 'ready' }
  | { type: 'beat'; test?: string; slug?: string }
  | { type: 'test'; slug: string; test: ReportedTest }
  | { type: 'finished'; slug: string; test: ReportedTest }
  | { type: 'module'; slug: string; module: ReportedModule }
  | { type: 'run-end'; unhandled: string[] }
  | { type: 'out-of-memory' }
  | { type: 'host-error'; message: string };

/** `suites`: the suite files to run, as absolute paths. */
export type HostCommand = { type: 'run'; suites: string[]; changed: string[]; seed: number };

const send = (message: HostMessage) => process.send?.(message);
// The runner that started this process is gone (closed terminal, killed parent): so are we,
// with every test thread, instead of spinning on as an orphan.
process.on('disconnect', () => process.exit(0));

// A test thread that reaches the heap limit is ended by Node with ERR_WORKER_OUT_OF_MEMORY,
// which Vitest reports only as an unexpected exit: tell the runner the cause while we can.
process.on('worker', (worker: Worker) =>
  worker.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') send({ type: 'out-of-memory' });
  }),
);

const slugOf = (file: string) => path.basename(file, '.test.ts');

class HostReporter implements Reporter {
  private output = new Map<string, CapturedOutput>();

  onTestRunStart() {
    this.output.clear();
  }

  onUserConsoleLog(log: UserConsoleLog) {
    const key = log.taskId ?? 'module';
    const captured = this.output.get(key) ?? { text: '', cut: 0 };
    this.output.set(key, captureOutput(captured, log.content));
  }

  private report(test: TestCase): ReportedTest {
    const result = test.result();
    const status = result.state === 'passed' ? 'pass' : result.state === 'failed' ? 'fail' : 'skip';
    const message = result.state === 'failed' ? result.errors.map(describeError).join('\n') : undefined;
    const output = this.output.get(test.id);
    return {
      name: test.fullName,
      status,
      ...(message && { message }),
      ...(output && { output: output.text, ...(output.cut && { outputCut: output.cut }) }),
    };
  }

  onTestCaseResult(test: TestCase) {
    send({ type: 'test', slug: slugOf(test.module.moduleId), test: this.report(test) });
  }

  onTestModuleEnd(module: TestModule) {
    const tests = [...module.children.allTests()].map((test) => this.report(test));
    send({
      type: 'module',
      slug: slugOf(module.moduleId),
      module: { file: module.moduleId, errors: module.errors().map(describeError), tests },
    });
  }

  onTestRunEnd(
    _modules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<{ message?: string; stack?: string }>,
  ) {
    send({ type: 'run-end', unhandled: unhandledErrors.map(describeError) });
  }
}

// Test threads announce each test and beat while their event loop turns (test/kit/setup.ts).
let lastBeatSent = 0;
const heartbeat = new BroadcastChannel(HEARTBEAT_CHANNEL);
heartbeat.onmessage = (event) => {
  const beat = (event as MessageEvent<Heartbeat>).data;
  const now = performance.now();
  if (beat.finished && beat.file) return send({ type: 'finished', slug: slugOf(beat.file), test: beat.finished });
  if (!beat.test && now - lastBeatSent < 200) return; // a beat a fifth of a second is plenty
  lastBeatSent = now;
  send({ type: 'beat', ...(beat.test && { test: beat.test }), ...(beat.file && { slug: slugOf(beat.file) }) });
};

const vitest = await createVitest(
  {
    watch: false,
    // Vite's module runner loads the config with the transformer it has loaded anyway: bundling
    // it with Rolldown first cost ~15 MB and ~100 ms per start, and Node's own loader would load
    // amaro into this process, which host-entry.ts keeps out (npm run bench).
    configLoader: 'runner',
    project: ['graded'],
    reporters: [new HostReporter()],
    // This file may run from a stripped copy elsewhere (host-entry.ts): the runner says where.
    config: process.env.LAB_VITEST_CONFIG,
  },
  { logLevel: 'silent' },
);

async function run(command: HostCommand) {
  // The learner saved: drop the changed files from Vite's graph and from the test threads'
  // module caches, so this run imports what is on disk now.
  for (const file of command.changed) {
    vitest.invalidateFile(file);
    vitest.watcher.invalidates.add(file);
  }
  const specs: TestSpecification[] = [];
  for (const suite of command.suites) specs.push(...vitest.getModuleSpecifications(suite));
  const missing = command.suites.filter((suite) => !specs.some((spec) => spec.moduleId === suite));
  if (missing.length) specs.push(...(await vitest.globTestSpecifications(missing)));
  // Providing a value costs the next run ~70 ms (measured), so only when the seed changes: once
  // per grade, once per watch session.
  if (command.seed !== providedSeed) vitest.provide('labSeed', (providedSeed = command.seed));
  await vitest.runTestSpecifications(specs);
}

let providedSeed: number | undefined;
let queue = Promise.resolve();
process.on('message', (command: HostCommand) => {
  if (command.type !== 'run') return;
  queue = queue
    .then(() => run(command))
    .catch((error: Error) => {
      send({ type: 'host-error', message: error.stack ?? String(error) });
    });
});
send({ type: 'ready' });

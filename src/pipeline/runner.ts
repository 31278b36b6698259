/** Run steps in order; stop at the first failure or interruption; run cleanups in reverse. */
import { InterruptedError, withContext } from '../errors.js';
import type { Outcome, Step } from './step.js';

export interface RunnerHooks {
  onStepStart?(index: number, total: number, step: { name: string; title: string }): void;
  onStepEnd?(step: { name: string }, ms: number): void;
  onCleanupError?(step: { name: string }, err: unknown): void;
}

export interface StepTiming {
  name: string;
  ms: number;
}

export interface RunnerResult {
  outcome: Outcome;
  error?: Error;
  failedStep?: string;
  timings: StepTiming[];
}

export async function runSteps<C>(
  steps: Step<C>[],
  ctx: C,
  signal: AbortSignal,
  hooks: RunnerHooks = {},
): Promise<RunnerResult> {
  const started: Step<C>[] = [];
  const timings: StepTiming[] = [];
  let outcome: Outcome = 'success';
  let error: Error | undefined;
  let failedStep: string | undefined;
  for (const [i, step] of steps.entries()) {
    if (signal.aborted) {
      outcome = 'interrupted';
      error = signal.reason instanceof InterruptedError ? signal.reason : new InterruptedError('SIGINT');
      failedStep = step.name;
      break;
    }
    hooks.onStepStart?.(i, steps.length, step);
    started.push(step);
    const t0 = performance.now();
    try {
      await step.run(ctx);
    } catch (err) {
      const interrupted = err instanceof InterruptedError || signal.aborted;
      outcome = interrupted ? 'interrupted' : 'failure';
      error = interrupted
        ? err instanceof InterruptedError
          ? err
          : signal.reason instanceof InterruptedError
            ? signal.reason
            : new InterruptedError('SIGINT')
        : withContext(step.title, err);
      failedStep = step.name;
      timings.push({ name: step.name, ms: performance.now() - t0 });
      break;
    }
    const ms = performance.now() - t0;
    timings.push({ name: step.name, ms });
    hooks.onStepEnd?.(step, ms);
  }
  for (const step of started.reverse()) {
    if (!step.cleanup) continue;
    try {
      await step.cleanup(ctx, outcome);
    } catch (err) {
      hooks.onCleanupError?.(step, err);
    }
  }
  return { outcome, error, failedStep, timings };
}

import { describe, expect, it } from 'vitest';
import { InterruptedError } from '../errors.js';
import { runSteps } from './runner.js';
import type { Outcome, Step } from './step.js';

function recorder() {
  const events: string[] = [];
  const step = (name: string, fail?: Error | 'abort', ac?: AbortController): Step<unknown> => ({
    name,
    title: `doing ${name}`,
    async run() {
      events.push(`run ${name}`);
      if (fail === 'abort') {
        ac?.abort();
        throw new InterruptedError('SIGINT');
      }
      if (fail) throw fail;
    },
    async cleanup(_ctx, outcome: Outcome) {
      events.push(`cleanup ${name} ${outcome}`);
    },
  });
  return { events, step };
}

describe('runSteps', () => {
  it('runs all steps, then cleanups in reverse', async () => {
    const { events, step } = recorder();
    const r = await runSteps([step('a'), step('b'), step('c')], {}, new AbortController().signal);
    expect(r.outcome).toBe('success');
    expect(events).toEqual([
      'run a',
      'run b',
      'run c',
      'cleanup c success',
      'cleanup b success',
      'cleanup a success',
    ]);
    expect(r.timings.map((t) => t.name)).toEqual(['a', 'b', 'c']);
  });

  it('stops at a failure, cleans up only what started, and names the step', async () => {
    const { events, step } = recorder();
    const r = await runSteps(
      [step('a'), step('b', new Error('boom')), step('c')],
      {},
      new AbortController().signal,
    );
    expect(r.outcome).toBe('failure');
    expect(r.failedStep).toBe('b');
    expect(r.error?.message).toBe('doing b: boom');
    expect(events).toEqual(['run a', 'run b', 'cleanup b failure', 'cleanup a failure']);
  });

  it('treats an abort as an interruption', async () => {
    const { events, step } = recorder();
    const ac = new AbortController();
    const r = await runSteps([step('a'), step('b', 'abort', ac), step('c')], {}, ac.signal);
    expect(r.outcome).toBe('interrupted');
    expect(r.error).toBeInstanceOf(InterruptedError);
    expect(events).toEqual(['run a', 'run b', 'cleanup b interrupted', 'cleanup a interrupted']);
  });

  it('keeps cleaning up when a cleanup throws', async () => {
    const { events, step } = recorder();
    const bad: Step<unknown> = {
      name: 'bad',
      title: 'bad',
      run: async () => undefined,
      cleanup: async () => {
        throw new Error('cleanup broke');
      },
    };
    const errors: string[] = [];
    const r = await runSteps([step('a'), bad], {}, new AbortController().signal, {
      onCleanupError: (s, e) => errors.push(`${s.name}: ${String(e)}`),
    });
    expect(r.outcome).toBe('success');
    expect(errors).toEqual(['bad: Error: cleanup broke']);
    expect(events).toContain('cleanup a success');
  });
});

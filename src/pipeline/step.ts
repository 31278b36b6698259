/** A build is a plan of steps; each has run and an optional cleanup that always runs (Packer's multistep). */
import type { Outcome } from '../builders/builder.js';

export type { Outcome };

export interface Step<C> {
  name: string;
  /** Shown in the progress display, e.g. "bootstrapping vanilla disk". */
  title: string;
  run(ctx: C): Promise<void>;
  /** Runs in reverse order after success, failure or interruption, for every step that started. */
  cleanup?(ctx: C, outcome: Outcome): Promise<void>;
}

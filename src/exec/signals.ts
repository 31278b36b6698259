/**
 * The one owner of SIGINT, SIGTERM and SIGHUP for every verb. A verb that has work to stop and
 * clean up registers (trapSignals: its AbortController is aborted with an InterruptedError, its
 * cleanups then run in reverse as the verb unwinds); a verb that registered nothing just ends.
 * Either way the exit code is 130 (cli/main.ts asks interruptedBy()). A second signal while the
 * cleanup runs forces the exit: what is left is recorded, and `osbake clean` removes it.
 */
import { InterruptedError } from '../errors.js';

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

let received: NodeJS.Signals | undefined;
let installed = false;
const traps = new Set<(s: NodeJS.Signals) => void>();

/** The signal that interrupted this process, if one did. */
export function interruptedBy(): NodeJS.Signals | undefined {
  return received;
}

let ignoring = false;

/** From now on signals do nothing (a server worker that is finishing its downloads). */
export function ignoreFurtherSignals(): void {
  ignoring = true;
}

function onSignal(s: NodeJS.Signals): void {
  if (ignoring) return;
  if (received) {
    process.stderr.write(
      `osbake: ${s} again: stopping now, before the cleanup finished; osbake clean removes what is left\n`,
    );
    process.exit(130);
  }
  received = s;
  if (traps.size === 0) {
    process.stderr.write(`osbake: ${s} received: stopped\n`);
    process.exit(130);
  }
  for (const t of [...traps]) t(s);
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, onSignal);
}

/** Take the signals for this process from now on (cli/main.ts, before any verb runs). */
export function installSignalHandlers(): void {
  install();
}

/**
 * Abort `ac` with an InterruptedError on the first signal (after `say` tells the user what stops);
 * returns the function that removes this registration.
 */
export function trapSignals(ac: AbortController, say: (s: NodeJS.Signals) => void): () => void {
  install();
  const handler = (s: NodeJS.Signals) => {
    if (ac.signal.aborted) return;
    say(s);
    ac.abort(new InterruptedError(s));
  };
  traps.add(handler);
  return () => {
    traps.delete(handler);
  };
}

/** Call `fn` on the first signal (a server's graceful stop); returns the function that removes it. */
export function onInterrupt(fn: (s: NodeJS.Signals) => void): () => void {
  install();
  traps.add(fn);
  return () => {
    traps.delete(fn);
  };
}

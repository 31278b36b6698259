import { openSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import pino, { type Logger } from 'pino';
import { UserError } from '../errors.js';
import { makeDirsSync } from '../fsx/input.js';

export type { Logger };

/** A JSON-lines log file (timestamped) that records everything a command does. */
export function createFileLogger(file: string): Logger {
  try {
    makeDirsSync(dirname(file));
    // Opened here (not lazily by pino) so that an unusable place fails now, before any work.
    const fd = openSync(file, 'a');
    const dest = pino.destination({ fd, sync: true });
    return pino({ base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new UserError(
      'E_LOG_DIR',
      `cannot write the log file ${file} (${code})`,
      'set OSBAKE_LOG_DIR (or XDG_STATE_HOME / HOME for verb logs, outDir for build logs) to a writable directory',
    );
  }
}

/** A logger that records nothing (commands that do not write a log). */
export function createNullLogger(): Logger {
  return pino({ enabled: false });
}

/**
 * Where a verb that runs outside a build (burn, publish) logs: $OSBAKE_LOG_DIR, else
 * $XDG_STATE_HOME/osbake, else ~/.local/state/osbake; one file per run, named by verb and time.
 */
export function commandLogFile(verb: string, env = process.env, now = new Date()): string {
  const dir =
    env.OSBAKE_LOG_DIR ||
    join(env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state'), 'osbake');
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return join(dir, `${verb}-${stamp}-${process.pid}.log`);
}

import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import pino, { type Logger } from 'pino';

export type { Logger };

/** A JSON-lines log file (timestamped) that records everything a command does. */
export function createFileLogger(file: string): Logger {
  mkdirSync(dirname(file), { recursive: true });
  const dest = pino.destination({ dest: file, sync: true, append: true });
  return pino({ base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, dest);
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

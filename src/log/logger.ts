import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
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

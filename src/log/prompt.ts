/**
 * --debug pauses: a message on stderr, then wait for a line on stdin (Enter). An interruption ends
 * the wait; a closed stdin (no terminal, nothing piped) goes on at once and says so.
 */
import { createInterface } from 'node:readline';

export async function waitForEnter(message: string, signal?: AbortSignal): Promise<void> {
  process.stderr.write(`\n${message} `);
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      rl.once('line', () => resolve());
      rl.once('close', () => {
        process.stderr.write('(stdin closed: going on)\n');
        resolve();
      });
    });
  } finally {
    rl.close();
    process.stdin.pause();
  }
}

/**
 * The versions of the host tools that shape a chroot image's bytes: recorded with each build
 * (custom_data.tools) and compared by osbake rebuild before it builds again.
 */
import { capture } from '../../exec/run.js';
import type { Logger } from '../../log/logger.js';

/** Tool → the command whose first output line is its version. */
const VERSION_COMMANDS: Record<string, string> = {
  mke2fs: 'mke2fs -V',
  'qemu-img': 'qemu-img --version',
  'ansible-playbook': 'ansible-playbook --version',
};

/** The versions of these tools on this machine (default: all that a chroot build records). */
export async function toolVersions(
  log: Logger,
  tools: readonly string[] = Object.keys(VERSION_COMMANDS),
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const tool of tools) {
    const cmd = VERSION_COMMANDS[tool];
    out[tool] = cmd
      ? await capture(['sh', '-c', `${cmd} 2>&1 | head -n 1`], { log }).then(
          (s) => s.trim(),
          () => 'unknown',
        )
      : 'unknown';
  }
  return out;
}

/** "tool: recorded → now" for each tool whose version differs (pure). */
export function toolChanges(recorded: Record<string, string>, now: Record<string, string>): string[] {
  const names = [...new Set([...Object.keys(recorded), ...Object.keys(now)])].sort();
  return names
    .filter((n) => recorded[n] !== now[n])
    .map((n) => `${n}: ${recorded[n] ?? '(not recorded)'} → ${now[n] ?? '(not here)'}`);
}

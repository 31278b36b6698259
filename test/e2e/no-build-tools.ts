import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * e2e tests check what the CLI refuses; a regression must not start a real build instead. Their
 * PATH (vitest.config.ts) is a directory holding every program of the system's PATH except the
 * ones a build or a VM needs — made here, removed with the run's scratch directory.
 */
export const BUILD_TOOLS = ['packer', 'qemu-system-x86_64', 'mmdebstrap', 'ansible-playbook', 'dnf', 'virsh'];

export default function setup(): void {
  const dir = process.env.OSBAKE_E2E_BIN;
  if (!dir) throw new Error('OSBAKE_E2E_BIN is not set (vitest.config.ts sets it)');
  mkdirSync(dir, { recursive: true });
  for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (!existsSync(d)) continue;
    for (const name of readdirSync(d)) {
      if (BUILD_TOOLS.includes(name) || existsSync(join(dir, name))) continue;
      symlinkSync(join(d, name), join(dir, name));
    }
  }
}

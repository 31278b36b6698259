import { mkdirSync, rmSync } from 'node:fs';

/**
 * Unit and e2e tests make scratch directories with mkdtemp(tmpdir()); vitest.config.ts points
 * their TMPDIR at one directory per run (OSBAKE_TEST_SCRATCH), made here and removed afterwards,
 * so no run leaves /tmp/osbake-* behind, whatever a test forgot or a failure skipped.
 */
export default function setup(): () => void {
  const dir = process.env.OSBAKE_TEST_SCRATCH;
  if (!dir) throw new Error('OSBAKE_TEST_SCRATCH is not set (vitest.config.ts sets it)');
  mkdirSync(dir, { recursive: true });
  return () => rmSync(dir, { recursive: true, force: true });
}

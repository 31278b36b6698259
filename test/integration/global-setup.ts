import { execFileSync } from 'node:child_process';

/**
 * Integration tests run the built CLI (bin/osbake.js → dist/), so build it first (tsc, then the
 * esbuild bundle) — once per vitest run, however many projects name this setup.
 */
export default function setup(): void {
  // Testing another build of the CLI (OSBAKE_TEST_CLI, see helpers.ts): nothing to compile here.
  if (process.env.OSBAKE_TEST_CLI || process.env.OSBAKE_TEST_BUILT === String(process.pid)) return;
  execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
  process.env.OSBAKE_TEST_BUILT = String(process.pid);
}

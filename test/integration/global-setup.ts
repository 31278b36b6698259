import { execFileSync } from 'node:child_process';

/** Integration tests run the built CLI (bin/osbake.js → dist/), so compile first. */
export default function setup(): void {
  // Testing another build of the CLI (OSBAKE_TEST_CLI, see helpers.ts): nothing to compile here.
  if (process.env.OSBAKE_TEST_CLI) return;
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}

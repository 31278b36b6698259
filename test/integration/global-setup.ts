import { execFileSync } from 'node:child_process';

/** Integration tests run the built CLI (bin/osbake.js → dist/), so compile first. */
export default function setup(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}

import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import VmLaneSequencer from './test/sequencer.js';

// Unit and e2e tests' scratch directories: one directory per run, removed at the end
// (test/tmpdir-setup.ts). Integration tests keep the system's TMPDIR (the tools they run use it).
process.env.OSBAKE_TEST_SCRATCH ??= join(tmpdir(), `osbake-tests-${process.pid}`);
const scratch = { TMPDIR: process.env.OSBAKE_TEST_SCRATCH };
// e2e tests run with a PATH without packer, QEMU, mmdebstrap, ansible (test/e2e/no-build-tools.ts).
process.env.OSBAKE_E2E_BIN ??= join(process.env.OSBAKE_TEST_SCRATCH, 'e2e-bin');
const noBuildTools = {
  ...scratch,
  OSBAKE_E2E_BIN: process.env.OSBAKE_E2E_BIN,
  PATH: process.env.OSBAKE_E2E_BIN,
};

/**
 * Integration tests that boot no VM and build no image (nginx, sshd + rsync, dnf, rpmbuild, Packer's
 * validate, libvirt's preflight): a project of their own, to run them alone in ~3 min.
 */
const LIGHT_INTEGRATION = [
  'test/integration/burn.test.ts',
  'test/integration/libvirt-preflight.test.ts',
  'test/integration/manifest-processes.test.ts',
  'test/integration/nm-keyfile.test.ts',
  'test/integration/publish.test.ts',
  'test/integration/rocky-bootstrap.test.ts',
  'test/integration/rocky-static.test.ts',
  'test/integration/rpm-bundle.test.ts',
  'test/integration/serve.test.ts',
  'test/integration/template-check.test.ts',
];

export default defineConfig({
  test: {
    // A focused test (.only) must not silence the rest of the suite, in CI or anywhere.
    allowOnly: false,
    // Two test files at a time (vitest's default here would be one: cores - 1). The VM tests run in
    // two lanes (the 'integration' project below): the longest file in one, the others in turn
    // beside it — a TCG VM keeps one core busy, and the stick/network file alone takes longer than
    // all the others one after another (test/sequencer.ts orders them).
    poolOptions: { forks: { maxForks: 2 } },
    sequence: { sequencer: VmLaneSequencer },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'test/unit/**/*.test.ts'],
          testTimeout: 20_000,
          env: scratch,
          globalSetup: ['test/tmpdir-setup.ts'],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 60_000,
          env: noBuildTools,
          globalSetup: [
            'test/integration/global-setup.ts',
            'test/tmpdir-setup.ts',
            'test/e2e/no-build-tools.ts',
          ],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: LIGHT_INTEGRATION,
          // Real builds boot VMs under TCG: minutes, not seconds. Each test sets its own timeout too.
          testTimeout: 30 * 60_000,
          hookTimeout: 10 * 60_000,
          globalSetup: ['test/integration/global-setup.ts'],
          // After the unit, e2e and light tests (group 0), two files at once (poolOptions above):
          // each file's VMs, work directories and ports are its own; they share only the caches.
          pool: 'forks',
          sequence: { groupOrder: 1 },
        },
      },
      {
        // Real tools, no VM and no image build (run alone: npm run test:integration -- --project integration-light).
        test: {
          name: 'integration-light',
          include: LIGHT_INTEGRATION,
          testTimeout: 5 * 60_000,
          hookTimeout: 5 * 60_000,
          globalSetup: ['test/integration/global-setup.ts'],
          // One file at a time, after the unit and e2e files and before the VM tests (singleFork
          // files of a group run after its others): nothing else runs beside them. (Run beside the
          // VM tests and the unit/e2e forks, serve's graceful Ctrl-C test failed once under that load.)
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});

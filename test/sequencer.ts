import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The order the VM test files start in when two run at once (vitest.config.ts: two lanes). The
 * stick/network file is the longest: it starts first and runs alone in one lane while the others
 * run one after another in the other. Its seven-VM network install (about its last third) keeps
 * both cores busy, so the other lane starts with the file that runs two VMs at once (libvirt's
 * two hosts) and ends with the ones that need least. Files not named here keep vitest's order
 * (the last run's durations, or the larger file first) between these.
 */
const ORDER = [
  'test/integration/usb-installer.test.ts',
  'test/integration/libvirt-build.test.ts',
  'test/integration/build.test.ts',
  '*',
  'test/integration/patches.test.ts',
  'test/integration/netboot-serve.test.ts',
  'test/integration/interrupt.test.ts',
];

function rank(spec: TestSpecification): number {
  const id = spec.moduleId.replaceAll('\\', '/');
  const i = ORDER.findIndex((f) => f !== '*' && id.endsWith(f));
  return i >= 0 ? i : ORDER.indexOf('*');
}

export default class VmLaneSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    // Array.prototype.sort is stable: within a rank, BaseSequencer's order stays.
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

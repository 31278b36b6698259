import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The order the VM tests start in when two run at once (vitest.config.ts: two lanes): the longest
 * file first, so that the others run one after another beside it; then each by its known duration
 * (BaseSequencer: measured on the last run, or the larger file first). Files of the other projects
 * keep vitest's own order.
 */
const FIRST = ['test/integration/usb-installer.test.ts'];
const LAST = ['test/integration/interrupt.test.ts'];

function rank(spec: TestSpecification): number {
  const id = spec.moduleId.replaceAll('\\', '/');
  if (FIRST.some((f) => id.endsWith(f))) return 0;
  if (LAST.some((f) => id.endsWith(f))) return 2;
  return 1;
}

export default class VmLaneSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    // Array.prototype.sort is stable: within a rank, BaseSequencer's order stays.
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

import { describe, expect, it } from 'vitest';
import { formatElapsed, formatStatus } from './progress.js';

describe('progress', () => {
  it.each([
    [0, '00:00'],
    [61_000, '01:01'],
    [3_600_000 + 5_000, '1:00:05'],
  ])('formatElapsed(%i) = %s', (ms, s) => {
    expect(formatElapsed(ms)).toBe(s);
  });

  it('shows step, detail, elapsed and Ansible task, cut to width', () => {
    const s = {
      index: 4,
      total: 8,
      step: 'running packer build',
      detail: 'Provisioning with Ansible...',
      task: 'TASK [base : Install]',
      elapsedMs: 83_000,
    };
    expect(formatStatus(s)).toBe(
      '[4/8] running packer build · Provisioning with Ansible... · 01:23 · TASK [base : Install]',
    );
    expect(formatStatus(s, 20)).toHaveLength(20);
  });
});

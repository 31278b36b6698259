import { describe, expect, it } from 'vitest';
import { ByteProgress, formatByteProgress, formatBytes, formatElapsed, formatStatus } from './progress.js';

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

describe('byte progress', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1536, '1.5 KiB'],
    [5 * 1024 ** 3, '5.0 GiB'],
  ])('formatBytes(%i) = %s', (n, s) => {
    expect(formatBytes(n)).toBe(s);
  });

  it.each([
    [
      { label: 'builds/a.qcow2', done: 512 * 1024 ** 2, total: 2 * 1024 ** 3, elapsedMs: 4000 },
      'builds/a.qcow2 · 512.0 MiB / 2.0 GiB (25%) · 128.0 MiB/s · ETA 00:12',
    ],
    [{ label: 'x', done: 10, total: 10, elapsedMs: 1000 }, 'x · 10 B / 10 B (100%) · 10 B/s'],
    [{ label: 'x', done: 2048, elapsedMs: 0 }, 'x · 2.0 KiB · 0 B/s'],
  ])('formatByteProgress(%j)', (s, line) => {
    expect(formatByteProgress(s)).toBe(line);
  });

  function fake(live: boolean) {
    let t = 0;
    const out = {
      text: '',
      write: (s: string) => {
        out.text += s;
        return true;
      },
    };
    const p = new ByteProgress(out, live, () => t);
    return { out, p, tick: (ms: number) => (t += ms) };
  }

  it('prints a plain line at each quarter when not on a terminal', () => {
    const { out, p, tick } = fake(false);
    p.start('f', 400);
    for (let i = 0; i < 8; i++) {
      tick(500);
      p.add(50);
    }
    p.end();
    expect(out.text.split('\n').filter(Boolean)).toEqual([
      'f · 100 B / 400 B (25%) · 100 B/s · ETA 00:03',
      'f · 200 B / 400 B (50%) · 100 B/s · ETA 00:02',
      'f · 300 B / 400 B (75%) · 100 B/s · ETA 00:01',
    ]);
  });

  it('rewrites one status line at most every 100 ms on a terminal', () => {
    const { out, p, tick } = fake(true);
    p.start('f', 100);
    p.add(10);
    tick(150);
    p.add(10);
    p.end();
    expect(out.text.split('\r\x1b[2K')).toEqual([
      '',
      'f · 0 B / 100 B (0%) · 0 B/s',
      'f · 20 B / 100 B (20%) · 133 B/s · ETA 00:00',
      '',
    ]);
  });
});

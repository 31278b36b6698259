import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNullLogger } from '../log/logger.js';
import { attachExtent, attachImage, parseSfdiskJson } from './loop.js';

const MIB = 2 ** 20;

describe('parseSfdiskJson (pure)', () => {
  it('turns sectors into bytes and numbers partitions by their node', () => {
    const json = JSON.stringify({
      partitiontable: {
        label: 'gpt',
        sectorsize: 512,
        partitions: [
          { node: 'd.raw1', start: 2048, size: 2048, type: '21686148-6449-6E6F-744E-656564454649' },
          { node: 'd.raw3', start: 264192, size: 100, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4' },
        ],
      },
    });
    expect(parseSfdiskJson(json, 'd.raw')).toEqual([
      { number: 1, offset: MIB, size: MIB, type: '21686148-6449-6E6F-744E-656564454649' },
      { number: 3, offset: 264192 * 512, size: 51200, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4' },
    ]);
    expect(parseSfdiskJson('{"partitiontable":{}}', 'x')).toEqual([]);
    expect(() => parseSfdiskJson('nope', 'x')).toThrow(/not JSON/);
  });
});

const root = process.getuid?.() === 0 && existsSync('/dev/loop-control');

describe.runIf(root)('attaching images (real losetup and partx, as root)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'osbake-loop-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const log = createNullLogger();
  const image = (name: string) => {
    const p = join(dir, name);
    writeFileSync(p, '');
    truncateSync(p, 64 * MIB);
    execFileSync('sfdisk', ['--quiet', p], {
      input: 'label: dos\nstart=2048, size=32768, type=ef\nstart=34816, size=40960, type=83\n',
    });
    return p;
  };
  const size = (dev: string) => Number(execFileSync('blockdev', ['--getsize64', dev], { encoding: 'utf8' }));

  it('six images at once: each gets its own device and the nodes of its partitions, all detached after', async () => {
    const imgs = Array.from({ length: 6 }, (_, i) => image(`d${i}.raw`));
    const attached = await Promise.all(imgs.map((p) => attachImage(p, { log })));
    try {
      expect(new Set(attached.map((a) => a.device)).size).toBe(6);
      for (const a of attached) {
        expect([...a.partitions.keys()]).toEqual([1, 2]);
        expect(size(a.partitions.get(1) as string)).toBe(16 * MIB);
        expect(size(a.partitions.get(2) as string)).toBe(20 * MIB);
      }
    } finally {
      await Promise.all(attached.map((a) => a.detach()));
    }
    const list = execFileSync('losetup', ['--list', '--noheadings', '--output', 'BACK-FILE'], {
      encoding: 'utf8',
    });
    for (const p of imgs) expect(list).not.toContain(p);
  });
  it('an extent becomes a device of exactly its size', async () => {
    const p = image('e.raw');
    const ext = await attachExtent(p, { offset: 17 * MIB, size: 20 * MIB }, { log });
    try {
      expect(size(ext.device)).toBe(20 * MIB);
    } finally {
      await ext.detach();
      await ext.detach();
    }
  });
});

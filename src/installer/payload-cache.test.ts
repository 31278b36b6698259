import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatPiecesFile } from './payload.js';
import { framesIntact } from './payload-cache.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** An entry of two frames (any bytes: the check is of the recorded SHA-256, not of zstd). */
function entry(root: string, name: string): string {
  const dir = join(root, name);
  const a = Buffer.from('frame one bytes');
  const b = Buffer.from('second frame, longer bytes');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'payload.zst'), Buffer.concat([a, b]));
  writeFileSync(join(dir, 'payload.ranges'), `# offset length sha256\n0 8192 ${'0'.repeat(64)}\n`);
  writeFileSync(
    join(dir, 'payload.pieces'),
    formatPiecesFile([
      { offset: 0, length: 4096, zstOffset: 0, zstLength: a.length, sha256: sha(a) },
      { offset: 4096, length: 4096, zstOffset: a.length, zstLength: b.length, sha256: sha(b) },
    ]),
  );
  return dir;
}

describe('framesIntact (a cached payload is checked before a stick takes it)', () => {
  const root = mkdtempSync(join(tmpdir(), 'osbake-paycache-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('holds for an entry as made', async () => {
    expect(await framesIntact(entry(root, 'ok'))).toBe(true);
  });

  it('fails for a changed byte, a cut or longer payload.zst, a symlink, a broken list, pieces not covering the ranges, a missing file', async () => {
    const flip = entry(root, 'flip');
    const z = readFileSync(join(flip, 'payload.zst'));
    z[20] = (z[20] ?? 0) ^ 1;
    writeFileSync(join(flip, 'payload.zst'), z);
    expect(await framesIntact(flip)).toBe(false);

    const cut = entry(root, 'cut');
    writeFileSync(join(cut, 'payload.zst'), readFileSync(join(cut, 'payload.zst')).subarray(0, 30));
    expect(await framesIntact(cut)).toBe(false);

    const longer = entry(root, 'longer');
    writeFileSync(
      join(longer, 'payload.zst'),
      Buffer.concat([readFileSync(join(longer, 'payload.zst')), Buffer.from('x')]),
    );
    expect(await framesIntact(longer)).toBe(false);

    const link = entry(root, 'link');
    const elsewhere = join(root, 'elsewhere.zst');
    writeFileSync(elsewhere, readFileSync(join(link, 'payload.zst')));
    rmSync(join(link, 'payload.zst'));
    symlinkSync(elsewhere, join(link, 'payload.zst'));
    expect(await framesIntact(link)).toBe(false);

    const list = entry(root, 'list');
    writeFileSync(join(list, 'payload.pieces'), 'not a pieces line\n');
    expect(await framesIntact(list)).toBe(false);

    const uncovered = entry(root, 'uncovered');
    writeFileSync(join(uncovered, 'payload.ranges'), `0 12288 ${'0'.repeat(64)}\n`);
    expect(await framesIntact(uncovered)).toBe(false);

    const gone = entry(root, 'gone');
    rmSync(join(gone, 'payload.pieces'));
    expect(await framesIntact(gone)).toBe(false);
  });
});

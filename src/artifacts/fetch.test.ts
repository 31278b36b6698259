import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchArtifactToStore } from './fetch.js';

const body = Buffer.alloc(300_000, 7);
const sha = createHash('sha256').update(body).digest('hex');

describe('fetchArtifactToStore', () => {
  let server: Server;
  let mirror: string;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'osbake-fetch-'));
    server = createServer((req, res) => {
      if (req.url === '/repos/Debian12/b%201.tar.zst') res.end(body);
      else res.writeHead(404).end('no');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    mirror = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('downloads, checks size and sha256, and places the file', async () => {
    const dest = join(dir, 'ok/b 1.tar.zst');
    let seen = 0;
    await fetchArtifactToStore(
      mirror,
      { path: 'repos/Debian12/b 1.tar.zst', sha256: sha, size: body.length },
      dest,
      {
        onBytes: (n) => {
          seen += n;
        },
      },
    );
    expect(readFileSync(dest).equals(body)).toBe(true);
    expect(seen).toBe(body.length);
    expect(readdirSync(join(dir, 'ok'))).toEqual(['b 1.tar.zst']);
  });

  it('refuses a file whose sha256 differs and leaves nothing behind', async () => {
    const dest = join(dir, 'bad/b.tar.zst');
    await expect(
      fetchArtifactToStore(
        mirror,
        { path: 'repos/Debian12/b 1.tar.zst', sha256: 'f'.repeat(64), size: body.length },
        dest,
      ),
    ).rejects.toThrow(/manifest\.yaml records/);
    expect(existsSync(dest)).toBe(false);
    expect(readdirSync(join(dir, 'bad'))).toEqual([]);
  });

  it('says HTTP 404 for a file the mirror lacks', async () => {
    await expect(
      fetchArtifactToStore(mirror, { path: 'repos/x.tar.zst', sha256: sha, size: 1 }, join(dir, 'x')),
    ).rejects.toThrow(/HTTP 404/);
  });
});

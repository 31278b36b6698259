import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawStatusLine } from '../../test/fixtures/raw-http.js';
import { coalesceRanges, createShaCache, hostHeaders, isHttp09RequestLine } from './http.js';
import { type ArtifactServer, startArtifactServer } from './server.js';

describe('artifact server: hostile request lines and headers, several ranges', () => {
  let dir = '';
  let srv: ArtifactServer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'osbake-srv-'));
    await mkdir(join(dir, 'builds'), { recursive: true });
    srv = await startArtifactServer({ storeDir: dir, port: 0, accessLog: false });
  });
  afterAll(async () => {
    await srv?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    [
      'CONNECT to an authority (as nginx: 400)',
      'CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n',
      'HTTP/1.1 400 Bad Request',
    ],
    ['CONNECT to a path', 'CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n', 'HTTP/1.1 405 Method Not Allowed'],
    ['a duplicate Host', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'HTTP/1.1 400 Bad Request'],
    ['an empty Host', 'GET / HTTP/1.1\r\nHost: \r\n\r\n', 'HTTP/1.1 400 Bad Request'],
    ['a plain GET', 'GET /api/builds HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'HTTP/1.1 200 OK'],
  ])('%s', async (_n, text, status) => {
    expect(await rawStatusLine(srv.port, text)).toBe(status);
  });

  it('counts Host headers from rawHeaders', () => {
    expect(hostHeaders(['Host', 'a', 'Accept', '*/*', 'host', 'b'])).toEqual(['a', 'b']);
  });

  it('coalesces several ranges into one span; leaves one range, none or nonsense alone', () => {
    expect(coalesceRanges('bytes=0-9,100-199', 1000)).toBe('bytes=0-199');
    expect(coalesceRanges('bytes=500-599,0-9,-10', 1000)).toBe('bytes=0-999');
    expect(coalesceRanges('bytes=0-9', 1000)).toBeUndefined();
    expect(coalesceRanges('bytes=0-9,5-20', 1000)).toBeUndefined(); // overlapping: send combines them itself
    expect(coalesceRanges(undefined, 1000)).toBeUndefined();
    expect(coalesceRanges('bytes=2000-2001,3000-3001', 1000)).toBeUndefined();
    expect(coalesceRanges('items=0-1,2-3', 1000)).toBeUndefined();
  });

  it('answers a multi-range request with 206 and the covering Content-Range, never 200', async () => {
    const file = join(dir, 'builds', 'data.bin');
    await writeFile(file, Buffer.alloc(1000, 7));
    const res = await fetch(`${srv.url}/builds/data.bin`, { headers: { Range: 'bytes=0-9,100-199' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('bytes 0-199/1000');
    expect((await res.arrayBuffer()).byteLength).toBe(200);
  });

  it('If-Range: the strong ETag matches (206); a weak or other tag does not (the whole file)', async () => {
    const file = join(dir, 'builds', 'data2.bin');
    await writeFile(file, Buffer.alloc(1000, 8));
    const url = `${srv.url}/builds/data2.bin`;
    const head = await fetch(url, { method: 'HEAD' });
    const etag = head.headers.get('etag') as string;
    expect(etag).toMatch(/^"[0-9a-f]+-3e8"$/);
    const strong = await fetch(url, { headers: { Range: 'bytes=0-9', 'If-Range': etag } });
    expect(strong.status).toBe(206);
    await strong.arrayBuffer();
    for (const ifRange of [`W/${etag}`, '"other"']) {
      const res = await fetch(url, { headers: { Range: 'bytes=0-9', 'If-Range': ifRange } });
      expect(res.status).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBe(1000);
    }
    const byDate = await fetch(`${srv.url}/builds/data2.bin`, {
      headers: { Range: 'bytes=0-9', 'If-Range': head.headers.get('last-modified') as string },
    });
    expect(byDate.status).toBe(206);
  });
});

describe('computed .sha256 sidecars', () => {
  it('concurrent requests for one file share one hash; a changed file is hashed again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-sha-'));
    try {
      const file = join(dir, 'a.raw');
      await writeFile(file, 'one');
      let runs = 0;
      const sha = createShaCache(async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 50));
        return `hash-${runs}`;
      });
      const all = await Promise.all(Array.from({ length: 8 }, () => sha(file)));
      expect(new Set(all)).toEqual(new Set(['hash-1']));
      expect(runs).toBe(1);
      await writeFile(file, 'two, longer');
      expect(await sha(file)).toBe('hash-2');
      expect(runs).toBe(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a failed hash is not kept', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-sha-'));
    try {
      const file = join(dir, 'a.raw');
      await writeFile(file, 'x');
      let runs = 0;
      const sha = createShaCache(async () => {
        runs++;
        if (runs === 1) throw new Error('EIO');
        return 'ok';
      });
      await expect(sha(file)).rejects.toThrow('EIO');
      expect(await sha(file)).toBe('ok');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('isHttp09RequestLine', () => {
  it('is a request line without a version, complete in the first bytes', () => {
    expect(isHttp09RequestLine(Buffer.from('GET /builds/a\r\n'))).toBe(true);
    expect(isHttp09RequestLine(Buffer.from('GET /builds/a\n'))).toBe(true);
    expect(isHttp09RequestLine(Buffer.from('GET /builds/a HTTP/1.1\r\nHost: a\r\n\r\n'))).toBe(false);
    expect(isHttp09RequestLine(Buffer.from('GET /builds/a'))).toBe(false);
  });
});

import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DIRECT_REQUEST, followLines, nginxConfig } from './nginx.js';

const opts = {
  root: '/srv/store',
  host: '127.0.0.1',
  port: 8080,
  backendPort: 40000,
  workers: 2,
  dir: '/tmp/x',
};

describe('nginx engine', () => {
  it('lets nginx answer only GET/HEAD of plain paths; the rest goes to osbake', () => {
    const direct = (line: string) => new RegExp(DIRECT_REQUEST).test(line);
    expect(direct('GET:/builds/debian12-base-r1-main-0123abcd.qcow2')).toBe(true);
    expect(direct('HEAD:/repos/Debian12/x_1.0+deb12u1~bpo.tar.zst')).toBe(true);
    for (const line of [
      'POST:/builds/a.qcow2', // methods: osbake answers 405 with Allow
      'GET:/', // the page
      'GET:/builds/', // listings
      'GET:/builds/.partial', // dotfiles
      'GET:/builds/%2e%2e/etc/passwd', // any percent-encoding
      'GET:/builds/../etc/passwd',
      'GET:/builds//a',
      'GET:/builds/a?x=1', // queries
      'GET:/builds/a\\b',
    ]) {
      expect(direct(line), line).toBe(false);
    }
  });

  it('writes a configuration: listen, root, no symlinks, types, the osbake fallback', () => {
    const c = nginxConfig(opts);
    expect(c).toContain('listen 127.0.0.1:8080;');
    expect(c).toContain('root "/srv/store";');
    expect(c).toContain('disable_symlinks on from=$document_root;');
    expect(c).toContain('proxy_pass http://127.0.0.1:40000;');
    expect(c).toMatch(/text\/plain sha256 asc txt;/);
    expect(c).toContain('worker_processes 2;');
    expect(c).not.toContain('user root');
    expect(nginxConfig({ ...opts, runAsRoot: true })).toMatch(/^user root root;$/m);
    expect(nginxConfig({ ...opts, host: '::1' })).toContain('listen [::1]:8080;');
  });

  it('refuses paths nginx could misread', () => {
    expect(() => nginxConfig({ ...opts, root: '/srv/$store' })).toThrow(
      /cannot put .* in an nginx configuration/,
    );
  });
});

describe('the access log', () => {
  it('is a buffered file, so no nginx worker waits for osbake', () => {
    expect(nginxConfig(opts)).toContain('access_log "/tmp/x/access.log" osbake buffer=64k flush=1s;');
  });

  it('is followed: whole lines in order, a partial line when it is complete or at the end', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'osbake-follow-'));
    try {
      const file = join(dir, 'access.log');
      const lines: string[] = [];
      const f = followLines(file, (l) => lines.push(l), 20);
      await new Promise((r) => setTimeout(r, 60)); // no file yet: nothing, no error
      await writeFile(file, 'one\ntwo\nthr');
      await new Promise((r) => setTimeout(r, 100));
      expect(lines).toEqual(['one', 'two']);
      await appendFile(file, 'ee\nfour');
      await f.stop();
      expect(lines).toEqual(['one', 'two', 'three', 'four']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

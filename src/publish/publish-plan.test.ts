import { describe, expect, it } from 'vitest';
import { parseSshUrl } from '../config/ssh-target.js';
import { UserError } from '../errors.js';
import {
  orderFiles,
  parseRsyncProgress,
  parseRsyncStats,
  parseSha256sum,
  partName,
  rsyncArgv,
  type SshSettings,
  sshArgv,
} from './publish-plan.js';

describe('parseSshUrl', () => {
  it.each([
    [
      'ssh://deploy@mirror.example/srv/osbake',
      { user: 'deploy', host: 'mirror.example', port: undefined, path: '/srv/osbake' },
    ],
    [
      'ssh://mirror.example:2222/srv/osbake/',
      { user: undefined, host: 'mirror.example', port: 2222, path: '/srv/osbake' },
    ],
    ['ssh://u@[::1]:22/m', { user: 'u', host: '::1', port: 22, path: '/m' }],
    ['ssh://u@127.0.0.1:40022/tmp/x//y', { user: 'u', host: '127.0.0.1', port: 40022, path: '/tmp/x/y' }],
  ])('%s', (url, want) => {
    expect(parseSshUrl(url)).toEqual(want);
  });

  it.each([
    'http://x/y',
    'ssh://host',
    'ssh://host:99999/p',
    'ssh://host/a/../../etc',
    'ssh://u;rm@host/p',
    'rsync://h/p',
  ])('refuses %s', (url) => {
    expect(() => parseSshUrl(url)).toThrow(UserError);
  });
});

const settings: SshSettings = {
  target: { user: 'deploy', host: 'mirror.example', port: 2222, path: '/srv/osbake' },
  knownHosts: '/home/me/mirror known_hosts',
  identityFile: '/home/me/.ssh/id_ed25519',
};

describe('ssh and rsync argv', () => {
  it('always checks host keys against the given known_hosts, never asks', () => {
    const argv = sshArgv(settings, ['sha256sum', '--', '/srv/osbake/builds/a b.qcow2']);
    expect(argv).toEqual([
      'ssh',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'UserKnownHostsFile=/home/me/mirror known_hosts',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=20',
      '-o',
      'ServerAliveInterval=15',
      '-o',
      'IdentitiesOnly=yes',
      '-i',
      '/home/me/.ssh/id_ed25519',
      '-p',
      '2222',
      'deploy@mirror.example',
      '--',
      "sha256sum -- '/srv/osbake/builds/a b.qcow2'",
    ]);
    expect(argv.join(' ')).not.toMatch(/StrictHostKeyChecking=no/);
  });

  it('uploads resumably to the hidden temporary name', () => {
    expect(partName('/srv/osbake/builds/a.qcow2')).toBe('/srv/osbake/builds/.a.qcow2.part');
    const argv = rsyncArgv(settings, '/store/builds/a.qcow2', '/srv/osbake/builds/a.qcow2', 500);
    expect(argv.slice(0, 9)).toEqual([
      'rsync',
      '--partial',
      '--partial-dir=.rsync-partial',
      '--times',
      '--chmod=F644',
      '--protect-args',
      '--stats',
      '--info=progress2',
      '--bwlimit=500',
    ]);
    expect(argv.at(-3)).toBe(
      "ssh -o StrictHostKeyChecking=yes -o 'UserKnownHostsFile=/home/me/mirror known_hosts' -o BatchMode=yes -o ConnectTimeout=20 -o ServerAliveInterval=15 -o IdentitiesOnly=yes -i /home/me/.ssh/id_ed25519 -p 2222",
    );
    expect(argv.slice(-2)).toEqual([
      '/store/builds/a.qcow2',
      'deploy@mirror.example:/srv/osbake/builds/.a.qcow2.part',
    ]);
  });
});

describe('orderFiles', () => {
  it('puts existing sidecars before each file and the release JSON last', () => {
    const have = new Set([
      'builds/a.qcow2.sha256',
      'builds/a.packages.tsv',
      'repos/D/p.tar.zst.sha256',
      'repos/D/p.txt',
    ]);
    expect(
      orderFiles(['builds/a.qcow2', 'repos/D/p.tar.zst', 'builds/a.qcow2'], (r) => have.has(r), [
        'releases/R.json',
      ]),
    ).toEqual([
      'builds/a.qcow2.sha256',
      'builds/a.packages.tsv',
      'builds/a.qcow2',
      'repos/D/p.tar.zst.sha256',
      'repos/D/p.txt',
      'repos/D/p.tar.zst',
      'releases/R.json',
    ]);
  });
});

describe('rsync and sha256sum output', () => {
  it('reads progress2 lines and --stats', () => {
    expect(parseRsyncProgress('     12,582,912  25%    4.00MB/s    0:00:09')).toBe(12582912);
    expect(parseRsyncProgress('Number of files: 1 (reg: 1)')).toBeUndefined();
    expect(
      parseRsyncStats([
        'Literal data: 37,748,736 bytes',
        'Matched data: 12,582,912 bytes',
        'Total bytes sent: 37,768,001',
      ]),
    ).toEqual({ literal: 37748736, matched: 12582912, sent: 37768001 });
  });

  it('reads sha256sum lines, text and binary mode', () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    expect(
      parseSha256sum(`${a}  /m/x y.qcow2\n${b} */m/z\nsha256sum: /m/q: No such file or directory\n`),
    ).toEqual(
      new Map([
        ['/m/x y.qcow2', a],
        ['/m/z', b],
      ]),
    );
  });
});

import { describe, expect, it } from 'vitest';
import { formatTable } from './table.js';

describe('formatTable', () => {
  it.each([
    [undefined, [], ''],
    [['A', 'B'], [], 'A  B\n'],
    [
      ['NAME', 'VERSION', 'ARCH'],
      [
        ['bash', '5.2', 'amd64'],
        ['openssl', '3.0.13-1~deb12u1', 'all'],
      ],
      'NAME     VERSION           ARCH\nbash     5.2               amd64\nopenssl  3.0.13-1~deb12u1  all\n',
    ],
    [
      undefined,
      [
        ['a', ''],
        ['bb', 'x'],
      ],
      'a\nbb  x\n',
    ],
  ])('%j %j', (header, rows, text) => {
    expect(formatTable(header, rows)).toBe(text);
  });
});

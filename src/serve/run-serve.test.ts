import { describe, expect, it } from 'vitest';
import { UserError } from '../errors.js';
import { checkHost, MAX_WORKERS, parsePort, parseWorkers } from './run-serve.js';

describe('serve options', () => {
  it('parses ports', () => {
    expect(parsePort('0')).toBe(0);
    expect(parsePort('8080')).toBe(8080);
    for (const bad of ['http', '-1', '65536', '80.5', '']) expect(() => parsePort(bad)).toThrow(UserError);
  });

  it('parses worker counts: auto is one per core, at most 8', () => {
    expect(parseWorkers('auto', 2)).toBe(2);
    expect(parseWorkers('auto', 1)).toBe(1);
    expect(parseWorkers('auto', 32)).toBe(8);
    expect(parseWorkers('1')).toBe(1);
    expect(parseWorkers(String(MAX_WORKERS))).toBe(MAX_WORKERS);
    for (const bad of ['0', 'two', '-2', '1.5', String(MAX_WORKERS + 1)]) {
      expect(() => parseWorkers(bad)).toThrow(/--workers .* is not a worker count/);
    }
  });
});

describe('checkHost', () => {
  it('accepts addresses and names that resolve, refuses the rest with E_HOST', async () => {
    await expect(checkHost('127.0.0.1')).resolves.toBeUndefined();
    await expect(checkHost('::1')).resolves.toBeUndefined();
    await expect(checkHost('localhost')).resolves.toBeUndefined();
    await expect(checkHost('no-such-host.invalid')).rejects.toMatchObject({
      code: 'E_HOST',
      message: expect.stringMatching(
        /--host no-such-host\.invalid does not resolve \((ENOTFOUND|EAI_AGAIN)\)/,
      ),
    });
  });
});

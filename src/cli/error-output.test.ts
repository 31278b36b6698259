import { describe, expect, it } from 'vitest';
import { ProcessError, UserError } from '../errors.js';
import { commandLine, environmentError, processErrorLine, withCode } from './error-output.js';

describe('error output', () => {
  it('puts the code at the end of the first line', () => {
    expect(withCode('git not found', 'E_TOOL_MISSING')).toBe('git not found [E_TOOL_MISSING]');
    expect(withCode('2 configuration problems:\n  a: b', 'E_CONFIG')).toBe(
      '2 configuration problems: [E_CONFIG]\n  a: b',
    );
  });

  it.each([
    ['EACCES', /permissions/],
    ['EROFS', /read-only/],
    ['ENOSPC', /disk is full/],
    ['EISDIR', /directory is where a file belongs/],
    ['ELOCKED', /another osbake process holds this lock/],
  ])('turns %s from the machine into a user error with a hint', (code, hint) => {
    const err = Object.assign(new Error(`${code}: open '/x/y'`), { code });
    const u = environmentError(err);
    expect(u).toBeInstanceOf(UserError);
    expect(u?.code).toBe(`E_${code}`);
    expect(u?.message).toContain('/x/y');
    expect(u?.hint).toMatch(hint);
  });

  it('leaves bugs alone', () => {
    expect(environmentError(new TypeError('x is undefined'))).toBeUndefined();
    expect(environmentError(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_TYPE' }))).toBeUndefined();
  });
});

describe('a child tool that failed', () => {
  it("is one line: what failed and the tool's own last line; the command is shown quoted and cut", () => {
    const e = new ProcessError(['mkfs.ext4', '-F', '/tmp/a b.raw'], 1, [
      'mke2fs 1.47.0',
      'No space left',
      '',
    ]);
    e.message = `making the root file system: ${e.message}`;
    expect(withCode(processErrorLine(e), 'E_TOOL')).toBe(
      'making the root file system: mkfs.ext4 exited with code 1: No space left [E_TOOL]',
    );
    expect(commandLine(e.argv)).toBe('mkfs.ext4 -F "/tmp/a b.raw"');
    expect(commandLine(['x', 'y'.repeat(1000)])).toHaveLength(400);
    expect(processErrorLine(new ProcessError(['true'], undefined, [], 'SIGKILL'))).toBe(
      'true was killed by SIGKILL',
    );
  });
});

import { describe, expect, it } from 'vitest';
import { commandLogFile } from './logger.js';

describe('commandLogFile', () => {
  const now = new Date('2026-11-26T12:55:24.123Z');
  it('uses OSBAKE_LOG_DIR, else XDG_STATE_HOME/osbake, else ~/.local/state/osbake', () => {
    expect(commandLogFile('burn', { OSBAKE_LOG_DIR: '/var/log/osb', HOME: '/root' }, now)).toBe(
      `/var/log/osb/burn-20261126T125524Z-${process.pid}.log`,
    );
    expect(commandLogFile('burn', { XDG_STATE_HOME: '/s', HOME: '/root' }, now)).toBe(
      `/s/osbake/burn-20261126T125524Z-${process.pid}.log`,
    );
    expect(commandLogFile('publish', { HOME: '/home/u' }, now)).toBe(
      `/home/u/.local/state/osbake/publish-20261126T125524Z-${process.pid}.log`,
    );
  });
});

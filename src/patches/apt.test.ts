import { describe, expect, it } from 'vitest';
import { aptOptions, parseAptRemovals, parseAptSimulation } from './apt.js';

const SIM = `NOTE: This is only a simulation!
Reading package lists...
Calculating upgrade...
The following NEW packages will be installed:
  linux-image-6.1.0-57-amd64
Inst libc6 [2.36-9+deb12u4] (2.36-9+deb12u13 Debian-Security:12/stable-security [amd64]) []
Inst linux-image-6.1.0-57-amd64 (6.1.193-1 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u2 Debian:12.12/stable-updates, Debian:12.12/stable [all])
Conf libc6 (2.36-9+deb12u13 Debian-Security:12/stable-security [amd64])
Remv oldpkg [1.0]
`;

describe('apt simulation', () => {
  it('lists upgrades and new packages with old → new versions and origin', () => {
    expect(parseAptSimulation(SIM)).toEqual([
      {
        name: 'libc6',
        oldVersion: '2.36-9+deb12u4',
        newVersion: '2.36-9+deb12u13',
        origin: 'Debian-Security:12/stable-security',
        arch: 'amd64',
      },
      {
        name: 'linux-image-6.1.0-57-amd64',
        oldVersion: undefined,
        newVersion: '6.1.193-1',
        origin: 'Debian-Security:12/stable-security',
        arch: 'amd64',
      },
      {
        name: 'tzdata',
        oldVersion: '2024a-0+deb12u1',
        newVersion: '2025b-0+deb12u2',
        origin: 'Debian:12.12/stable-updates',
        arch: 'all',
      },
    ]);
  });

  it('finds removals', () => {
    expect(parseAptRemovals(SIM)).toEqual(['oldpkg']);
  });

  it('confines apt to its own directory and the image status file', () => {
    const o = aptOptions('/w/apt', '/w/status');
    expect(o).toContain('Dir::State::status=/w/status');
    expect(o).toContain('Dir::Etc::SourceList=/w/apt/sources.list');
    expect(o).toContain('Dir::Cache=/w/apt/cache');
  });
});

import { describe, expect, it } from 'vitest';
import { ImageConfigSchema, type ImageDefinition } from '../config/image.js';
import { ConfigError } from '../errors.js';
import { DISTRO_NAMES, distroOf } from './index.js';

const image = (cfg: object): ImageDefinition => ({
  name: 'r',
  dir: '/p/images/r',
  file: '/p/images/r/image.yaml',
  config: ImageConfigSchema.parse({ name: 'r', ...cfg }),
  templateDir: '/p/images/r',
  manifestFile: '/p/images/r/manifest.json',
});

describe('distroOf', () => {
  it('knows debian and rocky', () => {
    expect(DISTRO_NAMES.sort()).toEqual(['debian', 'rocky']);
    expect(distroOf(image({ distro: 'debian' })).name).toBe('debian');
    expect(distroOf(image({ distro: 'rocky', suite: '8.10' })).name).toBe('rocky');
  });

  it.each([
    [{ distro: 'gentoo' }, 'distro: unknown distribution "gentoo": use one of debian, rocky'],
    [{ distro: 'constructor' }, 'distro: unknown distribution "constructor"'],
    [{ distro: 'rocky' }, 'suite: "bookworm" is not a Rocky 8 point release'],
    [{ distro: 'rocky', suite: '9.4' }, 'suite: "9.4" is not a Rocky 8 point release'],
    [{ distro: 'debian', suite: 'Bookworm 12' }, 'suite: "Bookworm 12" is not a Debian suite name'],
  ])('refuses %j with the file and key', (cfg, msg) => {
    let err: unknown;
    try {
      distroOf(image(cfg));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('/p/images/r/image.yaml');
    expect((err as Error).message).toContain(msg);
  });
});

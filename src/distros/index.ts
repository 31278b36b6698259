/** The distributions osbake knows: one line each. */
import type { ImageDefinition } from '../config/image.js';
import { ConfigError } from '../errors.js';
import { debian } from './debian.js';
import type { Distro } from './distro.js';
import { rocky } from './rocky.js';

const DISTROS: Record<string, Distro> = { debian, rocky };

export const DISTRO_NAMES = Object.keys(DISTROS);

/**
 * The distro module of an image, with the distro's own checks of image.yaml (e.g. the suite's
 * form); every problem as a ConfigError naming the file and key.
 */
export function distroOf(image: ImageDefinition): Distro {
  const d = Object.hasOwn(DISTROS, image.config.distro) ? DISTROS[image.config.distro] : undefined;
  if (!d) {
    throw new ConfigError([
      {
        file: image.file,
        path: 'distro',
        message: `unknown distribution "${image.config.distro}": use one of ${DISTRO_NAMES.join(', ')}`,
      },
    ]);
  }
  const problems = d.checkImage(image);
  if (problems.length > 0) {
    throw new ConfigError(problems.map((p) => ({ file: image.file, path: p.path, message: p.message })));
  }
  return d;
}

import type { ImageConfig } from '../config/image.js';
import { debian } from './debian.js';
import type { Distro } from './distro.js';

const DISTROS: Record<ImageConfig['distro'], Distro> = { debian };

export function distroFor(name: ImageConfig['distro']): Distro {
  return DISTROS[name];
}

import type { ImageConfig } from '../config/image.js';
import { debian } from './debian.js';
import type { Distro } from './distro.js';
import { rocky } from './rocky.js';

const DISTROS: Record<ImageConfig['distro'], Distro> = { debian, rocky };

export function distroFor(name: ImageConfig['distro']): Distro {
  return DISTROS[name];
}

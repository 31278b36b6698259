/** images/<name>/image.yaml: one image definition (distro, vanilla disk inputs, Packer template). */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, UserError } from '../errors.js';
import { loadYamlConfig } from './load.js';
import type { Project } from './project.js';

export const IMAGE_FILE = 'image.yaml';
export const IMAGES_DIR = 'images';

const imageName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'must be lower-case letters, digits and dashes (it names artifacts)');

export const ImageConfigSchema = z
  .object({
    name: imageName.describe('the image name; must equal its directory name'),
    description: z.string().default(''),
    kind: z
      .enum(['image', 'installer'])
      .default('image')
      .describe(
        'image: a Packer VM provisions the vanilla disk into a disk image; installer: a USB installer assembled on the host',
      ),
    distro: z
      .string()
      .regex(/^[a-z][a-z0-9]*$/, 'must be a distribution module name such as debian or rocky')
      .describe(
        'distribution module (src/distros/<name>.ts: debian — host-made vanilla disk; rocky — ISO + kickstart or a libvirt vanilla volume)',
      ),
    suite: z
      .string()
      .min(1, 'must not be empty')
      .default('bookworm')
      .describe('distribution release: Debian suite (bookworm) or Rocky point release (8.10)'),
    needs: z
      .array(imageName)
      .default([])
      .describe('images that must be built before this one (osbake build --all orders by it)'),
    vanilla: z
      .object({
        packages: z.array(z.string().min(1)).default([]).describe('extra packages in the vanilla disk'),
        channels: z
          .array(z.enum(['release', 'updates', 'security']))
          .min(1)
          .default(['release', 'updates', 'security'])
          .describe(
            'suites the vanilla disk is bootstrapped from; [release] alone leaves every security fix to patch bundles',
          ),
        hooks: z
          .array(z.string().min(1))
          .default([])
          .describe('extra mmdebstrap --customize-hook commands ($1 is the root directory)'),
      })
      .strict()
      .prefault({}),
    packer: z
      .object({
        template: z.string().default('.').describe('directory (relative to the image) holding *.pkr.hcl'),
        variables: z
          .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
          .default({})
          .describe('extra Packer variables (-var k=v)'),
      })
      .strict()
      .prefault({}),
    installer: z
      .object({
        payload: z
          .string()
          .default('debian12-base')
          .describe('the image (kind image in manifest.yaml) of release R that the installer writes'),
        label: z
          .string()
          .regex(/^[A-Z0-9_-]{1,16}$/, 'must be 1-16 upper-case letters, digits, _ or - (an ext4 label)')
          .default('OSBAKE-USB')
          .describe('file system label of the data partition; the installer finds itself by it'),
        modules: z
          .array(z.string().min(1))
          .default([])
          .describe(
            'extra kernel modules in the installer initramfs (disk and USB drivers are always there)',
          ),
        kernelArgs: z.string().default('').describe('extra kernel command line of the installer'),
      })
      .strict()
      .prefault({}),
    vm: z
      .object({
        cpus: z.number().int().min(1).optional(),
        memory: z.number().int().min(512).optional(),
        diskSize: z
          .string()
          .regex(/^\d+[MG]$/, 'must be a size like 8G')
          .optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.needs.includes(c.name))
      ctx.addIssue({ code: 'custom', path: ['needs'], message: 'an image cannot need itself' });
  });

export type ImageConfig = z.output<typeof ImageConfigSchema>;

export interface ImageDefinition {
  name: string;
  dir: string;
  file: string;
  config: ImageConfig;
  templateDir: string;
  manifestFile: string;
}

export async function listImageNames(project: Project): Promise<string[]> {
  const dir = join(project.root, IMAGES_DIR);
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, IMAGE_FILE)))
    .map((e) => e.name)
    .sort();
}

export async function loadImage(project: Project, name: string): Promise<ImageDefinition> {
  const dir = join(project.root, IMAGES_DIR, name);
  const file = join(dir, IMAGE_FILE);
  if (!existsSync(file)) {
    const known = await listImageNames(project);
    throw new UserError(
      'E_NO_IMAGE',
      `no image named "${name}" (${file} does not exist)`,
      known.length ? `known images: ${known.join(', ')} (osbake images)` : 'create images/<name>/image.yaml',
    );
  }
  const config = await loadYamlConfig(file, ImageConfigSchema, project.root);
  if (config.name !== name) {
    throw new UserError(
      'E_CONFIG',
      `${file}: name: "${config.name}" does not match its directory "${name}"`,
      `set name: ${name}`,
    );
  }
  const templateDir = resolve(dir, config.packer.template);
  const rel = relative(dir, templateDir);
  if (rel.startsWith('..') || isAbsolute(rel)) {
    throw new ConfigError([
      {
        file,
        path: 'packer.template',
        message: `"${config.packer.template}" is outside the image directory ${dir}`,
      },
    ]);
  }
  if (config.kind === 'image' && !existsSync(templateDir)) {
    throw new ConfigError([
      {
        file,
        path: 'packer.template',
        message: `"${config.packer.template}" does not exist (${templateDir})`,
      },
    ]);
  }
  return {
    name,
    dir,
    file,
    config,
    templateDir,
    manifestFile: join(dir, 'manifest.json'),
  };
}

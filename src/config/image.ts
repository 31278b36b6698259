/** images/<name>/image.yaml: one image definition (distro, vanilla disk inputs, Packer template). */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, UserError } from '../errors.js';
import { loadYamlConfig } from './load.js';
import { diskSize, type Project, vmCpus, vmMemory } from './project.js';

/** A package name as Debian and RPM spell them (with an optional =version): nothing a shell or a list would split. */
const packageName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9+._-]*(=[A-Za-z0-9+.:~_-]+)?$/,
    'must be a package name (letters, digits, + . _ -, optionally =VERSION)',
  );

/**
 * Packer variables osbake sets itself for every build (builders/packer/vars.ts; its test keeps
 * this list complete): image.yaml may not set them — vm: sets cpus, memory and disk_size.
 */
export const PACKER_MANAGED_VARS: ReadonlySet<string> = new Set([
  'accelerator',
  'artifact',
  'cpus',
  'disk_size',
  'domain_name',
  'git_commit',
  'hypervisor',
  'image_name',
  'libvirt_network',
  'libvirt_pool',
  'libvirt_uri',
  'libvirt_vanilla_volume',
  'memory',
  'output_directory',
  'packages_file',
  'packer_manifest',
  'patch_repo_url',
  'patch_repo_dir',
  'release',
  'serial_log',
  'ssh_bastion_host',
  'ssh_bastion_username',
  'ssh_bastion_private_key_file',
  'ssh_private_key_file',
  'ssh_public_key_file',
  'ssh_timeout',
  'vanilla_disk',
  'vm_name',
  'volume_name',
  'ansible_ssh_extra_args',
  'ssh_bastion_port',
  'dpkg_status_file',
  'rpm_nevra_file',
]);

/** One line of printable text: kernel arguments, labels written into boot configuration. */
const oneLine = z
  .string()
  .refine(
    (v) => ![...v].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f),
    'must be one line without control characters',
  );

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
        packages: z.array(packageName).default([]).describe('extra packages in the vanilla disk'),
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
        template: z
          .string()
          .regex(/^[^\0\n\r]+$/, 'must be a directory path on one line')
          .default('.')
          .describe('directory (relative to the image) holding *.pkr.hcl'),
        variables: z
          .record(
            z
              .string()
              .regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'must be a Packer variable name')
              .refine(
                (k) => !PACKER_MANAGED_VARS.has(k),
                'is a variable osbake sets itself (use vm: for cpus, memory, disk_size)',
              ),
            z.union([z.string().regex(/^[^\0]*$/, 'must not hold NUL'), z.number(), z.boolean()]),
          )
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
          .array(
            z
              .string()
              .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a kernel module name (letters, digits, _ and -)'),
          )
          .default([])
          .describe(
            'extra kernel modules in the installer initramfs (disk and USB drivers are always there)',
          ),
        kernelArgs: oneLine.default('').describe('extra kernel command line of the installer'),
        compressionLevel: z
          .number()
          .int('must be a whole number')
          .min(1, 'must be 1-19 (zstd levels)')
          .max(19, 'must be 1-19 (zstd levels)')
          .default(19)
          .describe(
            "zstd level of the payload's pieces: 19 (default) is the smallest on the stick and the wire; lower builds faster, installs as fast",
          ),
      })
      .strict()
      .prefault({}),
    vm: z
      .object({
        cpus: vmCpus.optional(),
        memory: vmMemory.optional(),
        diskSize: diskSize.optional(),
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

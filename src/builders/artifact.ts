/**
 * What every builder that provisions with the image's playbook shares at its two ends: where the
 * playbook is, how its task lines read, and how the provisioned disk becomes the published
 * artifact (one compressed qcow2) with its manifest record.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileSize } from '../artifacts/checksum.js';
import { run } from '../exec/run.js';
import type { BuilderOutput, BuilderType, BuildJob } from './builder.js';

/** The playbook every image keeps at the same place for every builder. */
export const PLAYBOOK = 'ansible/playbook.yml';

/**
 * qemu-img convert options of a published qcow2: zstd-compressed clusters (QEMU ≥ 5.1 and libvirt
 * read them), written by one coroutine (-m 1) so the output is reproducible.
 */
export const QCOW2_COMPRESSED = ['-c', '-m', '1', '-o', 'compression_type=zstd'];

/** The task name of an Ansible "TASK [role : name] ****" line. */
export function ansibleTask(line: string): string | undefined {
  return /^TASK \[(.+)\]/.exec(line)?.[1];
}

/**
 * Writes the provisioned disk `source` (raw or qcow2) as the build's compressed qcow2 in
 * work/output, removes the source, and returns the output's common part.
 */
export async function writeArtifact(
  job: BuildJob,
  o: { source: string; format: 'raw' | 'qcow2'; builder: BuilderType },
): Promise<Pick<BuilderOutput, 'artifactPath' | 'packagesFile' | 'packageStateFile' | 'record'>> {
  const output = join(job.workDir, 'output', job.artifactFile);
  await mkdir(join(job.workDir, 'output'), { recursive: true });
  job.progress.detail(`converting to ${job.artifactFile}`);
  await run(['qemu-img', 'convert', ...QCOW2_COMPRESSED, '-f', o.format, '-O', 'qcow2', o.source, output], {
    log: job.log,
    signal: job.signal,
    echo: job.debug,
  });
  await rm(o.source, { force: true });
  return {
    artifactPath: output,
    packagesFile: join(job.workDir, 'packages.tsv'),
    packageStateFile: join(job.workDir, job.distro.packageState.file),
    record: {
      name: job.image.name,
      builder_type: o.builder,
      build_time: Math.floor(Date.now() / 1000),
      files: [{ name: job.artifactFile, size: await fileSize(output) }],
      artifact_id: job.artifactFile,
      packer_run_uuid: randomUUID(),
    },
  };
}

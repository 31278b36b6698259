/**
 * What every builder that provisions with the image's playbook shares: where the playbook is, the
 * variables file and the ansible-playbook run of the builders that start it themselves (chroot,
 * virsh; Packer starts its own), how its task lines read, and how the provisioned disk becomes the
 * published artifact (one compressed qcow2) with its manifest record.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileSize } from '../artifacts/checksum.js';
import { run } from '../exec/run.js';
import { type BuilderOutput, type BuilderType, type BuildJob, provisionVariables } from './builder.js';

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

/** The playbook's extra variables (provisionVariables, the build's Python) written to `file`. */
export async function writePlaybookVars(job: BuildJob, file: string): Promise<void> {
  const vars = {
    ...provisionVariables(job, job.patchRepoUrl ?? ''),
    patch_repo_dir: '',
    ansible_python_interpreter: '/usr/bin/python3',
  };
  await writeFile(file, `${JSON.stringify(vars, null, 2)}\n`);
}

/**
 * Run ansible-playbook `argv` in the image's directory: plain output into the log, each task on the
 * progress line, the child killed with osbake, the last 30 lines in the error; `env` adds the
 * builder's own connection settings.
 */
export async function runPlaybook(job: BuildJob, argv: string[], env: Record<string, string>): Promise<void> {
  await run(argv, {
    log: job.log,
    tag: 'ansible',
    cwd: job.image.dir,
    signal: job.signal,
    dieWithParent: true,
    echo: job.debug,
    env: {
      ANSIBLE_HOST_KEY_CHECKING: 'False',
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_FORCE_COLOR: '0',
      ANSIBLE_RETRY_FILES_ENABLED: 'False',
      ANSIBLE_LOCAL_TEMP: join(job.workDir, 'ansible-tmp'),
      PYTHONUNBUFFERED: '1',
      ...env,
    },
    onLine: (line) => {
      const task = ansibleTask(line);
      if (task) job.progress.task(task);
    },
    tailLines: 30,
  });
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

/**
 * The seed's own build path, for real: `osbake build` on KVM hypervisors reached over SSH, driven
 * with Debian's virsh (engine virsh, no Packer plugin). A real libvirtd + virtlogd; two "hosts"
 * that are real sshd servers on 127.0.0.2 and 127.0.0.3 with their own host keys and pools, and a
 * third that is down. `build --all` builds two images on the two live hosts at once (each build
 * boot-tested locally afterwards, as every build is), the down host's build goes to the others;
 * a build killed with SIGKILL mid-boot leaves a domain and an overlay that
 * `osbake clean --hypervisor all` removes. The package list is cut to four packages (as in
 * build.test.ts): the playbook, roles and checks are the repository's own.
 */
import { execFileSync } from 'node:child_process';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliRun,
  freePort,
  git,
  makeProject,
  REPO,
  runCli,
  startCli,
  type TempProject,
} from './helpers.js';
import {
  type HypervisorKeys,
  type Libvirt,
  makeHypervisorKeys,
  osbakeLeftovers,
  startHypervisor,
  startLibvirt,
  type TestHypervisor,
} from './hypervisors.js';

const BASE_DEFAULTS = (packages: string) =>
  execFileSync('cat', [join(REPO, 'images/debian12-base/ansible/roles/base/defaults/main.yml')], {
    encoding: 'utf8',
  }).replace(/base_packages:\n(?: {2}- .*\n)+/, `base_packages: [${packages}]\n`);

interface BuildRecord {
  custom_data: Record<string, unknown>;
}

async function lastBuild(project: string, image: string): Promise<BuildRecord> {
  const m = JSON.parse(await readFile(join(project, 'images', image, 'manifest.json'), 'utf8')) as {
    builds: BuildRecord[];
  };
  return m.builds.at(-1) as BuildRecord;
}

describe('libvirt builder (virsh) on real hypervisors over SSH', () => {
  let libvirt: Libvirt;
  let keys: HypervisorKeys;
  let hv1: TestHypervisor;
  let hv2: TestHypervisor;
  let project: TempProject;
  let downPort: number;

  beforeAll(async () => {
    libvirt = await startLibvirt();
    keys = await makeHypervisorKeys();
    hv1 = await startHypervisor('hv1', '127.0.0.2', keys);
    hv2 = await startHypervisor('hv2', '127.0.0.3', keys);
    downPort = await freePort();
    project = await makeProject({
      files: {
        'images/debian12-base/ansible/roles/base/defaults/main.yml': BASE_DEFAULTS('jq, chrony, rsync, htop'),
      },
    });
    // A second image: the same definition with another package list (chrony stays: the role configures it).
    await cp(join(project.dir, 'images/debian12-base'), join(project.dir, 'images/debian12-tools'), {
      recursive: true,
    });
    const imageYaml = await readFile(join(project.dir, 'images/debian12-base/image.yaml'), 'utf8');
    await writeFile(
      join(project.dir, 'images/debian12-tools/image.yaml'),
      imageYaml.replace(/^name: debian12-base$/m, 'name: debian12-tools'),
    );
    await writeFile(
      join(project.dir, 'images/debian12-tools/ansible/roles/base/defaults/main.yml'),
      BASE_DEFAULTS('jq, chrony, tmux'),
    );
    // The down host comes first: the first image is handed to it, fails there, and moves on.
    // Two TCG guests at once on a 2-core machine: one vCPU each (two each took twice as long).
    const config = (await readFile(join(project.dir, 'osbake.yaml'), 'utf8'))
      .replace(/^( +type:) *auto/m, '$1 libvirt')
      .replace(/^( +cpus:) *2/m, '$1 1')
      .replace(
        /^hypervisors: \[\]$/m,
        [
          'hypervisors:',
          '  - name: hvdown',
          `    uri: qemu+ssh://root@127.0.0.4:${downPort}/system`,
          `    sshKey: ${keys.key}`,
          `    knownHosts: ${keys.knownHosts}`,
          hv1.yaml().trimEnd(),
          hv2.yaml().trimEnd(),
        ].join('\n'),
      );
    await writeFile(join(project.dir, 'osbake.yaml'), config);
    git(project.dir, 'add', '-A');
    git(project.dir, 'commit', '-q', '-m', 'two images, three hypervisors');
  });

  afterAll(async () => {
    // A failed test may leave a build VM running: none survives the test.
    for (const d of osbakeLeftovers(hv1?.pool ?? 'none').domains) {
      try {
        execFileSync('virsh', ['-q', '-c', 'qemu:///system', 'destroy', d], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
    await project?.cleanup();
    await hv1?.stop();
    await hv2?.stop();
    await libvirt?.stop();
  });

  it('refuses a hypervisor whose host key is not the pinned one, before any work', async () => {
    const other = join(keys.dir, 'known_hosts.other');
    await writeFile(
      other,
      (await readFile(keys.knownHosts, 'utf8')).replace(/^\[127\.0\.0\.2\]:\d+ /m, '[127.0.0.9]:1 '),
    );
    const yaml = (await readFile(join(project.dir, 'osbake.yaml'), 'utf8')).replaceAll(
      keys.knownHosts,
      other,
    );
    const dir = `${project.dir}-hostkey`;
    await cp(project.dir, dir, { recursive: true });
    await writeFile(join(dir, 'osbake.yaml'), yaml);
    git(dir, 'commit', '-qam', 'known_hosts without hv1');
    const t0 = Date.now();
    const r = await runCli(
      ['build', 'debian12-base', '--hypervisor', 'hv1', '--release', '0.0.1', '--skip-commit'],
      dir,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /error: .*hypervisor hv1: cannot log in over SSH to root@127\.0\.0\.2:\d+: .*Host key verification failed/,
    );
    expect(r.stderr).toContain('[E_HYPERVISOR_SSH]');
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(osbakeLeftovers(hv1.pool).volumes).toEqual([]);
  });

  it('validate checks each hypervisor as a build does', async () => {
    const r = await runCli(['validate', '--json'], project.dir);
    expect(r.code).toBe(1);
    const rows = JSON.parse(r.stdout) as { target: string; ok: boolean; problems: string[] }[];
    const row = (t: string) => rows.find((x) => x.target === t);
    expect(row('hypervisor hv1')?.ok).toBe(true);
    expect(row('hypervisor hv2')?.ok).toBe(true);
    expect(row('hypervisor hvdown')?.problems[0]).toMatch(/cannot log in over SSH to root@127\.0\.0\.4:\d+/);
  });

  let all: CliRun;
  it('build --all: two images on the two live hosts at once; the down host gives its build away', async () => {
    const t0 = Date.now();
    all = await runCli(['build', '--all', '--release', '1.0', '--skip-commit'], project.dir);
    const seconds = Math.round((Date.now() - t0) / 1000);
    process.stderr.write(`libvirt build --all: ${seconds} s\n`);
    expect(
      all.code,
      all.stderr
        .split('\n')
        .filter((l) => !l.startsWith('['))
        .join('\n'),
    ).toBe(0);
    expect(all.stderr).toMatch(
      /osbake: hvdown is not usable, its builds go to the other hosts: .*cannot log in over SSH/,
    );
    const hostOf = (image: string) => new RegExp(`${image}: built on (hv1|hv2)`).exec(all.stdout)?.[1];
    const a = hostOf('debian12-base');
    const b = hostOf('debian12-tools');
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    expect(new Set([a, b])).toEqual(new Set(['hv1', 'hv2']));
    // At once: both had started before either finished.
    const lines = all.stderr.split('\n');
    const firstEnd = lines.findIndex((l) => /: built on /.test(l));
    const starts = lines.slice(0, firstEnd).filter((l) => /\[(hv1|hv2)\] start/.test(l));
    expect(starts).toHaveLength(2);
    for (const [image, host] of [
      ['debian12-base', a],
      ['debian12-tools', b],
    ] as const) {
      const rec = await lastBuild(project.dir, image);
      expect(rec.custom_data).toMatchObject({
        accelerator: `libvirt:${host}`,
        hypervisor: host,
        libvirt_engine: 'virsh',
        hypervisor_accelerator: expect.stringMatching(/^(tcg|kvm)$/),
      });
      expect(rec.custom_data.boot_test ?? rec.custom_data.test).toMatchObject({ passed: true });
    }
    // The vanilla disk went to each pool once; no domain and no overlay is left.
    for (const hv of [hv1, hv2]) {
      const left = osbakeLeftovers(hv.pool);
      expect(left.domains).toEqual([]);
      expect(left.volumes.sort()).toEqual([
        expect.stringMatching(/^osbake-vanilla-[0-9a-f]{16}\.complete$/),
        expect.stringMatching(/^osbake-vanilla-[0-9a-f]{16}\.qcow2$/),
      ]);
    }
  });

  it('Ctrl-C mid-boot: exit 130, domain and overlay removed on the way out', async () => {
    const cli = startCli(
      ['build', 'debian12-base', '--hypervisor', 'hv2', '--release', '1.2', '--skip-commit'],
      project.dir,
      {},
      { group: true },
    );
    await cli.until(/booting \(/, 5 * 60_000);
    expect(osbakeLeftovers(hv2.pool).domains).toHaveLength(1);
    process.kill(-(cli.child.pid as number), 'SIGINT');
    const r = await cli.done;
    expect(r.code).toBe(130);
    const left = osbakeLeftovers(hv2.pool);
    expect(left.domains).toEqual([]);
    expect(left.volumes.filter((v) => v.startsWith('osbake-build-'))).toEqual([]);
  });

  it('kill -9 mid-build leaves a domain and an overlay; clean --hypervisor all removes them, nothing else', async () => {
    const cli = startCli(
      ['build', 'debian12-base', '--hypervisor', 'hv1', '--release', '1.1', '--skip-commit'],
      project.dir,
    );
    await cli.until(/booting \(/, 5 * 60_000);
    const during = osbakeLeftovers(hv1.pool);
    expect(during.domains).toHaveLength(1);
    cli.child.kill('SIGKILL');
    await cli.done;
    const left = osbakeLeftovers(hv1.pool);
    expect(left.domains).toEqual(during.domains);
    expect(left.volumes.filter((v) => v.startsWith('osbake-build-'))).toHaveLength(1);
    // Every hypervisor: hv1's leftovers found, the down host reported (and the exit code says so).
    const dry = await runCli(['clean', '--hypervisor', 'all', '--dry-run'], project.dir);
    expect(dry.code, dry.stderr).toBe(1);
    expect(dry.stdout).toMatch(/domain +hv1:osbake-build-\S+ .*is gone +would remove/);
    expect(dry.stdout).toMatch(/hypervisor +hvdown: +not reachable +FAILED: .*cannot log in over SSH/);
    expect(osbakeLeftovers(hv1.pool).domains).toHaveLength(1);
    const r = await runCli(['clean', '--hypervisor', 'hv1'], project.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/domain +hv1:osbake-build-\S+ .* removed/);
    expect(r.stdout).toMatch(/volume +hv1:osbake-build-\S+\.qcow2 .* removed/);
    expect(r.stdout).toMatch(/work-dir/);
    const after = osbakeLeftovers(hv1.pool);
    expect(after.domains).toEqual([]);
    expect(after.volumes.filter((v) => v.startsWith('osbake-build-'))).toEqual([]);
    // The cached vanilla volume is osbake's cache, not a leftover: kept.
    expect(after.volumes.filter((v) => v.startsWith('osbake-vanilla-'))).toHaveLength(2);
  });
});

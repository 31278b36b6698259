/** osbake build --all: every image, dependencies first, spread over the build hosts. */

import { choiceUsesHypervisors, chooseBuilder } from '../builders/choice.js';
import { listImageNames, loadImage } from '../config/image.js';
import { loadProject } from '../config/project.js';
import { assertReleaseName } from '../config/releases.js';
import { InterruptedError, UserError } from '../errors.js';
import { trapSignals } from '../exec/signals.js';
import { type RunBuildOptions, runBuild } from './run-build.js';
import { runSchedule, type ScheduleImage, type ScheduleOutcome } from './schedule.js';

export type RunBuildAllOptions = Omit<RunBuildOptions, 'image'>;

export interface BuildHost {
  name: string;
  /** The hypervisor's name for libvirt builds; absent for the local machine. */
  hypervisor?: string;
  /** Which of the hypervisor's slots (hypervisors[].slots builds at once). */
  slot?: number;
}

/** Failures that are the build host's, not the image's: its builds go to the other hosts. */
export const HOST_FAILURE_CODES = new Set([
  'E_HYPERVISOR_SSH',
  'E_BASTION_SSH',
  'E_LIBVIRT_CONNECT',
  'E_LIBVIRT_POOL',
]);

export function isHostFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && HOST_FAILURE_CODES.has(code);
}

/**
 * The hosts --all spreads builds over: the hypervisors for libvirt (or the one named), each as many
 * times as it has slots, else this machine.
 */
export function buildHosts(
  project: Parameters<typeof chooseBuilder>[0],
  o: { builder?: string; hypervisor?: string },
): BuildHost[] {
  const choice = chooseBuilder(project, o);
  if (!choiceUsesHypervisors(choice)) return [{ name: 'local' }];
  const all = o.hypervisor ? [choice.hypervisor] : project.config.hypervisors;
  return all.flatMap((h) =>
    h ? Array.from({ length: h.slots }, (_, slot) => ({ name: h.name, hypervisor: h.name, slot })) : [],
  );
}

function describe(o: ScheduleOutcome): string {
  if (o.status === 'built') return `${o.image}: built on ${o.host}`;
  if (o.status === 'skipped') return `${o.image}: skipped (${o.blockedBy} did not build)`;
  const msg = o.error instanceof Error ? o.error.message.split('\n')[0] : String(o.error);
  return `${o.image}: FAILED on ${o.host}: ${msg}`;
}

export async function runBuildAll(o: RunBuildAllOptions): Promise<ScheduleOutcome[]> {
  if (!o.release && !o.createPatches) {
    throw new UserError(
      'E_USAGE',
      'osbake build --all needs --release <release>',
      'e.g. osbake build --all --release 2026.11',
    );
  }
  if (o.release !== undefined) assertReleaseName(o.release);
  const project = await loadProject(o.projectDir);
  const hosts = buildHosts(project, o);
  const names = await listImageNames(project);
  if (names.length === 0) {
    throw new UserError('E_NO_IMAGE', 'there are no images to build', 'create images/<name>/image.yaml');
  }
  const images: ScheduleImage[] = [];
  for (const n of names) {
    const img = await loadImage(project, n);
    images.push({ name: n, needs: img.config.needs, file: img.file });
  }
  const ac = new AbortController();
  const untrap = trapSignals(ac, () => undefined);
  const parallel = hosts.length > 1;
  const hostNames = [...new Set(hosts.map((h) => h.name))];
  const slots = hosts.length === hostNames.length ? 'one build per host at a time' : `${hosts.length} slots`;
  process.stderr.write(`osbake: building ${names.length} image(s) on ${hostNames.join(', ')} (${slots})\n`);
  let outcomes: ScheduleOutcome[];
  try {
    outcomes = await runSchedule(
      images,
      hosts,
      async (host, image) => {
        await runBuild({
          ...o,
          image,
          hypervisor: host.hypervisor,
          quietProgress: parallel || o.quietProgress,
        });
      },
      {
        onStart: (image, host) => process.stderr.write(`osbake: [${host.name}] start ${image}\n`),
        onEnd: (r) => process.stderr.write(`osbake: ${describe(r)}\n`),
        hostFailed: isHostFailure,
        onHostDown: (host, err) =>
          process.stderr.write(
            `osbake: ${host.name} is not usable, its builds go to the other hosts: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`,
          ),
      },
      ac.signal,
    );
  } finally {
    untrap();
  }
  process.stdout.write(`build --all:\n${outcomes.map((r) => `  ${describe(r)}`).join('\n')}\n`);
  if (ac.signal.aborted)
    throw ac.signal.reason instanceof InterruptedError ? ac.signal.reason : new InterruptedError('SIGINT');
  const bad = outcomes.filter((r) => r.status !== 'built');
  if (bad.length > 0) {
    throw new UserError(
      'E_BUILD_ALL',
      `${bad.length} of ${outcomes.length} image(s) did not build: ${bad.map((r) => r.image).join(', ')}`,
      'see the lines above and each build log in out/',
    );
  }
  return outcomes;
}

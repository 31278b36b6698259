/** The `osbake images` verb: each image definition with its latest build and osbake rebuild's verdict. */
import { reproducibleOf } from '../config/builds.js';
import { listImageNames, loadImage } from '../config/image.js';
import { loadProject } from '../config/project.js';
import type { TextOut } from '../log/progress.js';
import { readImageBuilds } from './image-builds.js';

export async function runImages(o: { projectDir: string; json: boolean; out?: TextOut }): Promise<void> {
  const out = o.out ?? process.stdout;
  const project = await loadProject(o.projectDir);
  const names = await listImageNames(project);
  const images = await Promise.all(names.map((n) => loadImage(project, n)));
  const built = (await readImageBuilds(project)).images;
  // Once per image: its newest build and osbake rebuild's verdict on it.
  const latestOf = new Map(
    images.map((i) => {
      const b = [...(built.find((x) => x.image === i.name)?.builds ?? [])]
        .sort((x, y) => x.build_time - y.build_time)
        .at(-1);
      const v = b
        ? { artifact: b.custom_data.artifact, reproducible: reproducibleOf(b.custom_data.reproducible) }
        : undefined;
      return [i.name, v] as const;
    }),
  );
  const latest = (name: string) => latestOf.get(name);
  const rebuilt = (name: string) => {
    const r = latest(name)?.reproducible;
    return r ? `${r.identical ? 'bit-identical' : 'DIFFERS'} ${r.checked.slice(0, 10)}` : '–';
  };
  if (o.json) {
    const rows = images.map((i) => ({
      name: i.name,
      distro: i.config.distro,
      suite: i.config.suite,
      description: i.config.description,
      latest_build: latest(i.name)?.artifact ?? null,
      reproducible: latest(i.name)?.reproducible ?? null,
    }));
    out.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (images.length === 0) {
    out.write('no images (create images/<name>/image.yaml)\n');
    return;
  }
  const w = Math.max(...images.map((i) => i.name.length), 4);
  const lw = Math.max(...images.map((i) => (latest(i.name)?.artifact ?? '–').length), 12);
  out.write(
    `${'NAME'.padEnd(w)}  DISTRO           ${'LATEST BUILD'.padEnd(lw)}  ${'REBUILT'.padEnd(24)}  DESCRIPTION\n`,
  );
  for (const i of images) {
    const distro = `${i.config.distro} ${i.config.suite}`.padEnd(15);
    const last = (latest(i.name)?.artifact ?? '–').padEnd(lw);
    out.write(
      `${i.name.padEnd(w)}  ${distro}  ${last}  ${rebuilt(i.name).padEnd(24)}  ${i.config.description}\n`,
    );
  }
}

import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerImages(program: Command): void {
  program
    .command('images')
    .description('list the image definitions (images/<name>/image.yaml)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const g = program.opts<GlobalOptions>();
      const { listImageNames, loadImage } = await import('../../config/image.js');
      const { loadProject } = await import('../../config/project.js');
      const project = await loadProject(g.project ?? process.cwd());
      const names = await listImageNames(project);
      const images = await Promise.all(names.map((n) => loadImage(project, n)));
      if (opts.json) {
        const rows = images.map((i) => ({
          name: i.name,
          distro: i.config.distro,
          suite: i.config.suite,
          description: i.config.description,
        }));
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      if (images.length === 0) {
        process.stdout.write('no images (create images/<name>/image.yaml)\n');
        return;
      }
      const w = Math.max(...images.map((i) => i.name.length), 4);
      process.stdout.write(`${'NAME'.padEnd(w)}  DISTRO           DESCRIPTION\n`);
      for (const i of images) {
        const distro = `${i.config.distro} ${i.config.suite}`.padEnd(15);
        process.stdout.write(`${i.name.padEnd(w)}  ${distro}  ${i.config.description}\n`);
      }
    });
}

/** post-process: size, SHA-256 and the package list of the artifact (when its builder hands one). */
import { existsSync } from 'node:fs';
import { fileSize, sha256File } from '../../artifacts/checksum.js';
import { readPackageList } from '../../artifacts/package-list.js';
import { UserError } from '../../errors.js';
import type { BuildContext } from '../context.js';
import type { Step } from '../step.js';

export const postProcess: Step<BuildContext> = {
  name: 'post-process',
  title: 'checksumming the artifact (and reading its package list)',
  async run(ctx) {
    const file = ctx.artifactPath as string;
    ctx.size = await fileSize(file);
    ctx.progress.detail(`sha256 of ${(ctx.size / 2 ** 20).toFixed(0)} MiB`);
    ctx.sha256 = await sha256File(file);
    if (ctx.packagesFile === undefined) {
      // The builder hands no package list: the artifact has none of its own (an installer stick).
      ctx.packages = [];
      return;
    }
    if (!existsSync(ctx.packagesFile)) {
      throw new UserError(
        'E_NO_PACKAGE_LIST',
        'the image did not produce a package list',
        'the template must download it to the packages_file variable (see images/debian12-base)',
      );
    }
    ctx.packages = await readPackageList(ctx.packagesFile);
    if (ctx.packages.length === 0) throw new Error(`${ctx.packagesFile} lists no packages`);
  },
};

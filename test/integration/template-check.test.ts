/**
 * A Packer template with a syntax error is refused in preflight, as file:line: message in the
 * image's own folder, before the vanilla disk or a VM (real Packer, packer validate -syntax-only).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, REPO, runCli, type TempProject } from './helpers.js';

describe('template syntax checked before any work (real packer)', () => {
  let project: TempProject;
  beforeAll(async () => {
    const hcl = readFileSync(join(REPO, 'images/debian12-base/debian12-base.pkr.hcl'), 'utf8');
    project = await makeProject({
      files: {
        'images/debian12-base/debian12-base.pkr.hcl': `${hcl}\nsource "qemu" "broken" {\n  disk_size = \n}\n`,
      },
    });
  });
  afterAll(async () => {
    await project?.cleanup();
  });

  it('says file:line: what is wrong, with the code, and starts nothing', async () => {
    const r = await runCli(['build', 'debian12-base', '--release', 'r', '--builder', 'qemu'], project.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `${project.dir}/images/debian12-base/debian12-base\\.pkr\\.hcl:\\d+: Invalid expression: .*\\[E_TEMPLATE\\]`,
      ),
    );
    expect(r.stderr).toMatch(/build failed at step "preflight"/);
    expect(r.stderr).not.toMatch(/vanilla disk|mmdebstrap|Starting VM/);
    expect(r.stderr).not.toMatch(/template-check/);
  });
});

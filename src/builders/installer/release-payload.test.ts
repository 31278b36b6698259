import { describe, expect, it } from 'vitest';
import type { ReleaseArtifact } from '../../config/releases.js';
import { UserError } from '../../errors.js';
import { findPayloadArtifact } from './release-payload.js';

const art = (name: string, kind: ReleaseArtifact['kind']): ReleaseArtifact => ({
  name,
  kind,
  path: `builds/${name}.qcow2`,
  sha256: 'a'.repeat(64),
  size: 1,
});

describe('findPayloadArtifact', () => {
  it("takes release R's image of the configured name", () => {
    const a = [art('usb-installer', 'installer'), art('debian12-base', 'image')];
    expect(findPayloadArtifact(a, 'debian12-base', 'r1')).toBe(a[1]);
  });
  it('names the images the release has when the payload is missing', () => {
    const err = (() => {
      try {
        findPayloadArtifact([art('rocky8-base', 'image')], 'debian12-base', 'r1');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe('release r1 has no image debian12-base to put on the installer');
    expect((err as UserError).hint).toContain('rocky8-base');
  });
});

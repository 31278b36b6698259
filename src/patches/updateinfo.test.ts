import { describe, expect, it } from 'vitest';
import { advisoriesFixedBy, filterUpdateinfo, parseUpdateinfo } from './updateinfo.js';

const pkg = (name: string, version: string, arch = 'x86_64', epoch = '0') =>
  `<package name="${name}" version="${version}" release="1.el8" epoch="${epoch}" arch="${arch}" src="${name}-${version}-1.el8.src.rpm"><filename>${name}-${version}-1.el8.${arch}.rpm</filename></package>`;

const XML = `<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="security@rockylinux.org" status="final" type="security" version="2">
    <id>RLSA-2026:0001</id>
    <title>Important: openssl security update</title>
    <severity>Important</severity>
    <references><reference href="https://x.invalid/CVE-2026-1" id="CVE-2026-1" type="cve"/></references>
    <pkglist><collection short="baseos"><name>BaseOS</name>
      ${pkg('openssl-libs', '1.1.1k', 'x86_64', '1')}
      ${pkg('openssl-libs', '1.1.1k', 'i686', '1')}
      ${pkg('openssl', '1.1.1k', 'x86_64', '1')}
    </collection></pkglist>
  </update>
  <update type="bugfix"><id>RLBA-2026:0002</id><title>tzdata</title>
    <pkglist><collection><name>BaseOS</name>${pkg('tzdata', '2026a', 'noarch')}</collection></pkglist></update>
  <update type="security"><id>RLSA-2025:0009</id><severity>Moderate</severity>
    <pkglist><collection><name>BaseOS</name>${pkg('openssl-libs', '1.1.1j', 'x86_64', '1')}</collection></pkglist></update>
</updates>
`;

const evr = (version: string, epoch = 0, release = '1.el8') => ({ epoch, version, release });

describe('updateinfo.xml', () => {
  it('parses advisories with type, severity and packages', () => {
    const a = parseUpdateinfo(XML);
    expect(a.map((x) => [x.id, x.type, x.severity, x.packages.length])).toEqual([
      ['RLSA-2026:0001', 'security', 'Important', 3],
      ['RLBA-2026:0002', 'bugfix', undefined, 1],
      ['RLSA-2025:0009', 'security', 'Moderate', 1],
    ]);
    expect(a[0]?.packages[0]).toEqual({ name: 'openssl-libs', arch: 'x86_64', ...evr('1.1.1k', 1) });
  });

  it('maps an upgrade to every advisory between the installed and the new version', () => {
    const a = parseUpdateinfo(XML);
    const fixed = (
      old: ReturnType<typeof evr> | undefined,
      to: ReturnType<typeof evr>,
      name = 'openssl-libs',
    ) =>
      advisoriesFixedBy(
        {
          name,
          arch: 'x86_64',
          old: old && { name, arch: 'x86_64', ...old },
          new: { name, arch: 'x86_64', ...to },
        },
        a,
      ).map((x) => x.id);
    expect(fixed(evr('1.1.1i', 1), evr('1.1.1k', 1))).toEqual(['RLSA-2025:0009', 'RLSA-2026:0001']);
    expect(fixed(evr('1.1.1j', 1), evr('1.1.1k', 1))).toEqual(['RLSA-2026:0001']);
    expect(fixed(evr('1.1.1i', 1), evr('1.1.1j', 1))).toEqual(['RLSA-2025:0009']);
    // Without the epoch, 1.1.1k is older than 1:1.1.1i.
    expect(fixed(evr('1.1.1i', 1), evr('1.1.1m', 0))).toEqual([]);
    expect(fixed(undefined, evr('1.1.1k', 1))).toEqual(['RLSA-2025:0009', 'RLSA-2026:0001']);
    expect(fixed(evr('2025a'), evr('2026a'), 'tzdata')).toEqual([]); // arch differs: noarch
  });

  it('keeps only the named advisories, each cut to the bundle packages, first copy wins', () => {
    const out = filterUpdateinfo(
      [XML, XML],
      new Map([
        ['RLSA-2026:0001', new Set(['openssl-libs.x86_64'])],
        ['RLBA-2026:0002', new Set(['tzdata.noarch'])],
      ]),
    );
    const back = parseUpdateinfo(out);
    expect(back.map((x) => x.id)).toEqual(['RLSA-2026:0001', 'RLBA-2026:0002']);
    expect(back[0]?.packages.map((p) => `${p.name}.${p.arch}`)).toEqual(['openssl-libs.x86_64']);
    expect(out).toContain('<reference href="https://x.invalid/CVE-2026-1" id="CVE-2026-1" type="cve"/>');
    expect(out).toContain('<severity>Important</severity>');
  });

  it('writes an empty <updates/> when nothing is kept, and refuses broken XML', () => {
    expect(parseUpdateinfo(filterUpdateinfo([XML], new Map()))).toEqual([]);
    expect(() => parseUpdateinfo('<updates><update>')).toThrow(/not valid XML/);
  });
});

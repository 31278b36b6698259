/**
 * CycloneDX SBOM (JSON, spec 1.6) of an OS image: the image is metadata.component (type
 * operating-system, with its SHA-256), each installed package a component with a Debian or rpm purl.
 * Written next to the image as builds/<artifact>.cdx.json.
 */
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import CDX from '@cyclonedx/cyclonedx-library';
import { writeFileAtomically } from '../config/atomic.js';
import { OSBAKE_VERSION } from '../version.js';

export const SBOM_SPEC_VERSION = '1.6';

export interface SbomPackage {
  name: string;
  version: string;
  arch: string;
}

export interface SbomInput {
  image: string;
  artifact: string;
  sha256: string;
  /** The distribution's purl namespace (debian, rocky). */
  distro: string;
  /** Debian major version ("12") or Rocky point release ("8.10"). */
  distroVersion: string;
  /** The purl type of its packages (deb, rpm). */
  purlType: string;
  packages: SbomPackage[];
  timestamp?: Date;
}

/** Percent-encode a purl component (":" of an epoch becomes %3A, "+" becomes %2B). */
function purlEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** pkg:<type>/<distro>/<name>@<version>?arch=<arch>&distro=<distro>-<version> (version as the package manager gives it). */
export function packageUrl(type: string, distro: string, p: SbomPackage, distroVersion: string): string {
  return `pkg:${type}/${distro}/${purlEncode(p.name)}@${purlEncode(p.version)}?arch=${purlEncode(p.arch)}&distro=${distro}-${purlEncode(distroVersion)}`;
}

/** pkg:deb/debian/<name>@<version>?arch=<arch>&distro=debian-<version> */
export function debianPurl(p: SbomPackage, distroVersion: string): string {
  return packageUrl('deb', 'debian', p, distroVersion);
}

/** pkg:rpm/rocky/<name>@<version>?arch=<arch>&distro=rocky-<version> (epoch included). */
export function rpmPurl(p: SbomPackage, distro: string, distroVersion: string): string {
  return packageUrl('rpm', distro, p, distroVersion);
}

/** The SBOM as a JSON-able object (components sorted, so equal inputs give equal output but the serial). */
export function buildSbom(input: SbomInput): object {
  const { Models, Enums } = CDX;
  const bom = new Models.Bom({ serialNumber: `urn:uuid:${randomUUID()}` });
  bom.metadata.timestamp = input.timestamp ?? new Date();
  bom.metadata.tools.components.add(
    new Models.Component(Enums.ComponentType.Application, 'osbake', { version: OSBAKE_VERSION }),
  );
  const image = new Models.Component(Enums.ComponentType.OperatingSystem, input.image, {
    version: input.artifact,
    bomRef: input.artifact,
    description: `${input.distro} ${input.distroVersion} image built by osbake`,
  });
  image.hashes.set(Enums.HashAlgorithm['SHA-256'], input.sha256);
  image.properties.add(new Models.Property('osbake:artifact', input.artifact));
  image.properties.add(new Models.Property('osbake:distro', `${input.distro}-${input.distroVersion}`));
  bom.metadata.component = image;

  const seen = new Set<string>();
  for (const p of input.packages) {
    const purl = packageUrl(input.purlType, input.distro, p, input.distroVersion);
    if (seen.has(purl)) continue;
    seen.add(purl);
    const c = new Models.Component(Enums.ComponentType.Library, p.name, {
      version: p.version,
      purl,
      bomRef: purl,
    });
    c.properties.add(new Models.Property('osbake:arch', p.arch));
    bom.components.add(c);
    image.dependencies.add(c.bomRef);
  }
  const serializer = new CDX.Serialize.JsonSerializer(
    new CDX.Serialize.JSON.Normalize.Factory(CDX.Spec.Spec1dot6),
  );
  return JSON.parse(serializer.serialize(bom, { sortLists: true })) as object;
}

/** Write the SBOM atomically (temporary name, fsync, rename). */
export async function writeSbom(file: string, sbom: object): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFileAtomically(file, `${JSON.stringify(sbom, null, 2)}\n`);
}

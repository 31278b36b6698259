/** Package-list differences between two builds or two releases (pure). */

import type { PackageRecord } from '../artifacts/package-list.js';
import { formatTable } from '../log/table.js';

export interface PackageChange {
  name: string;
  arch: string;
  from: string;
  to: string;
}

export interface PackageDiff {
  added: PackageRecord[];
  removed: PackageRecord[];
  changed: PackageChange[];
  unchanged: number;
}

const keyOf = (p: PackageRecord) => `${p.name}\0${p.arch}`;
const byName = (a: { name: string; arch: string }, b: { name: string; arch: string }) =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : a.arch < b.arch ? -1 : a.arch > b.arch ? 1 : 0;

/** Packages are the same package when name and architecture match (multi-arch: libc6:amd64, libc6:i386). */
export function diffPackages(a: readonly PackageRecord[], b: readonly PackageRecord[]): PackageDiff {
  const before = new Map(a.map((p) => [keyOf(p), p]));
  const after = new Map(b.map((p) => [keyOf(p), p]));
  const added: PackageRecord[] = [];
  const removed: PackageRecord[] = [];
  const changed: PackageChange[] = [];
  let unchanged = 0;
  for (const [k, p] of after) {
    const old = before.get(k);
    if (!old) added.push(p);
    else if (old.version !== p.version)
      changed.push({ name: p.name, arch: p.arch, from: old.version, to: p.version });
    else unchanged++;
  }
  for (const [k, p] of before) if (!after.has(k)) removed.push(p);
  return {
    added: added.sort(byName),
    removed: removed.sort(byName),
    changed: changed.sort(byName),
    unchanged,
  };
}

/** One side of a comparison: for each image, the build and its packages. */
export type PackageSide = Map<string, { artifact: string; packages: PackageRecord[] }>;

export interface ImageDiff extends PackageDiff {
  image: string;
  a: string | null;
  b: string | null;
}

/** Compare per image name; an image on one side only has all its packages added or removed. */
export function diffSides(a: PackageSide, b: PackageSide): ImageDiff[] {
  const images = [...new Set([...a.keys(), ...b.keys()])].sort();
  return images.map((image) => {
    const x = a.get(image);
    const y = b.get(image);
    return {
      image,
      a: x?.artifact ?? null,
      b: y?.artifact ?? null,
      ...diffPackages(x?.packages ?? [], y?.packages ?? []),
    };
  });
}

function table(rows: string[][], indent: string): string[] {
  return formatTable(undefined, rows)
    .split('\n')
    .filter(Boolean)
    .map((l) => `${indent}${l}`);
}

export function formatImageDiff(d: ImageDiff): string {
  const lines = [`${d.image}: ${d.a ?? '(none)'} → ${d.b ?? '(none)'}`];
  if (d.added.length > 0) {
    lines.push(`  added (${d.added.length}):`);
    lines.push(
      ...table(
        d.added.map((p) => ['+', p.name, p.version, p.arch]),
        '    ',
      ),
    );
  }
  if (d.removed.length > 0) {
    lines.push(`  removed (${d.removed.length}):`);
    lines.push(
      ...table(
        d.removed.map((p) => ['-', p.name, p.version, p.arch]),
        '    ',
      ),
    );
  }
  if (d.changed.length > 0) {
    lines.push(`  changed (${d.changed.length}):`);
    lines.push(
      ...table(
        d.changed.map((c) => ['~', c.name, c.from, '→', c.to, c.arch]),
        '    ',
      ),
    );
  }
  lines.push(
    `  ${d.added.length} added, ${d.removed.length} removed, ${d.changed.length} changed, ${d.unchanged} unchanged`,
  );
  return `${lines.join('\n')}\n`;
}

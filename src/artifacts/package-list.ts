/** The package list of a build (name, version, arch), as the image's cleanup role writes it. */
import { readFile } from 'node:fs/promises';

export interface PackageRecord {
  name: string;
  version: string;
  arch: string;
}

/** Parse the package list the image's cleanup role wrote (name TAB version TAB arch). */
export function parsePackageList(text: string): PackageRecord[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [name = '', version = '', arch = ''] = l.split('\t');
      return { name, version, arch };
    })
    .filter((p) => p.name && p.version);
}

export async function readPackageList(file: string): Promise<PackageRecord[]> {
  return parsePackageList(await readFile(file, 'utf8'));
}

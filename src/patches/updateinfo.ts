/**
 * updateinfo.xml (the advisories of an rpm repository), pure: parse it, find the advisories an
 * upgrade fixes, and write the subset that concerns a bundle's packages (each kept advisory with
 * its package list cut down to the bundle's packages), as `dnf updateinfo` reads it.
 */
import { DOMParser, type Element, XMLSerializer } from '@xmldom/xmldom';
import { UserError } from '../errors.js';
import { compareEvr, type RpmPackage } from './rpm-version.js';

export interface Advisory {
  id: string;
  /** security, bugfix, enhancement, newpackage */
  type: string;
  severity?: string;
  title?: string;
  packages: RpmPackage[];
}

function parseXml(xml: string, what: string) {
  const errors: string[] = [];
  let doc: ReturnType<DOMParser['parseFromString']> | undefined;
  try {
    doc = new DOMParser({
      onError: (level, msg) => {
        if (level !== 'warning') errors.push(msg);
      },
    }).parseFromString(xml, 'text/xml');
  } catch (err) {
    errors.push(err instanceof Error ? err.message : String(err));
  }
  const root = doc?.documentElement;
  if (errors.length > 0 || !doc || !root) {
    throw new UserError(
      'E_BAD_METADATA',
      `${what} is not valid XML: ${errors[0] ?? 'empty'}`,
      'check the repository',
    );
  }
  return { doc, root };
}

const children = (el: Element, name: string): Element[] =>
  Array.from(el.childNodes).filter(
    (n): n is Element => n.nodeType === 1 && (n as Element).localName === name,
  );

const text = (el: Element, name: string): string | undefined =>
  children(el, name)[0]?.textContent?.trim() || undefined;

function packageOf(el: Element): RpmPackage {
  return {
    name: el.getAttribute('name') ?? '',
    epoch: Number(el.getAttribute('epoch') || 0),
    version: el.getAttribute('version') ?? '',
    release: el.getAttribute('release') ?? '',
    arch: el.getAttribute('arch') ?? '',
  };
}

const packageElements = (update: Element): Element[] =>
  children(update, 'pkglist').flatMap((l) =>
    children(l, 'collection').flatMap((c) => children(c, 'package')),
  );

/** Every advisory in an updateinfo.xml. */
export function parseUpdateinfo(xml: string, what = 'updateinfo.xml'): Advisory[] {
  const { root } = parseXml(xml, what);
  return children(root, 'update').map((u) => ({
    id: text(u, 'id') ?? '',
    type: u.getAttribute('type') || 'unknown',
    severity: text(u, 'severity'),
    title: text(u, 'title'),
    packages: packageElements(u).map(packageOf),
  }));
}

export interface UpgradeForAdvisories {
  name: string;
  arch: string;
  /** Installed version; undefined for a package the upgrade newly installs. */
  old?: RpmPackage;
  new: RpmPackage;
}

/**
 * The advisories an upgrade fixes: those listing the same name and arch at a version newer than
 * the installed one and not newer than the one the bundle brings. Sorted by id.
 */
export function advisoriesFixedBy(u: UpgradeForAdvisories, advisories: readonly Advisory[]): Advisory[] {
  return advisories
    .filter((a) =>
      a.packages.some(
        (p) =>
          p.name === u.name &&
          p.arch === u.arch &&
          compareEvr(p, u.new) <= 0 &&
          (u.old === undefined || compareEvr(p, u.old) > 0),
      ),
    )
    .sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * An updateinfo.xml with only the advisories named in `keep` (id → the bundle's name.arch keys),
 * each package list cut down to those packages. Several source files are merged; an advisory that
 * appears in more than one keeps its first copy.
 */
export function filterUpdateinfo(
  sources: readonly string[],
  keep: ReadonlyMap<string, ReadonlySet<string>>,
): string {
  const out = parseXml('<?xml version="1.0" encoding="UTF-8"?>\n<updates/>', 'template');
  const seen = new Set<string>();
  for (const [i, xml] of sources.entries()) {
    const { root } = parseXml(xml, `updateinfo.xml #${i + 1}`);
    for (const u of children(root, 'update')) {
      const id = text(u, 'id') ?? '';
      const names = keep.get(id);
      if (!names || seen.has(id)) continue;
      seen.add(id);
      const copy = out.doc.importNode(u, true) as Element;
      for (const list of children(copy, 'pkglist')) {
        for (const coll of children(list, 'collection')) {
          for (const p of children(coll, 'package')) {
            const q = packageOf(p);
            if (!names.has(`${q.name}.${q.arch}`)) coll.removeChild(p);
          }
        }
      }
      out.root.appendChild(out.doc.createTextNode('\n  '));
      out.root.appendChild(copy);
    }
  }
  out.root.appendChild(out.doc.createTextNode('\n'));
  return `${new XMLSerializer().serializeToString(out.doc)}\n`;
}

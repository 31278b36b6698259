/**
 * The web page at `/` (pure): server-rendered HTML, no framework, every value escaped. Releases
 * newest first with their artifacts (size, SHA-256 with a copy button, commit, date, links) and
 * the package diff against the previous release; then the builds of each image, clean or dirty,
 * with package counts, the package list and the diff against the release before them.
 */

import type { PackageRecord } from '../artifacts/package-list.js';
import { formatBytes, formatElapsed } from '../log/progress.js';
import type { NetbootView } from '../netboot/netboot.js';
import type { ImageDiff } from '../release/diff.js';
import type { ApiArtifact, ApiBuild, ApiRelease, Catalog } from './api.js';

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escape text for HTML element content and quoted attribute values. */
export function esc(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em;margin:0 0 .2em}h2{margin-top:1.6em;border-bottom:2px solid #ddd}h3{margin:1.2em 0 .3em}
table{border-collapse:collapse;width:100%;margin:.4em 0}th,td{text-align:left;padding:.25em .5em;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f6f6f6;font-weight:600}tr.head th{background:#e8eef6;font-size:1.05em}
code{font:12px ui-monospace,monospace}.num{text-align:right;white-space:nowrap}
.clean{color:#176f2c;font-weight:600}.dirty{color:#a33;font-weight:600}.missing{color:#a33}
button.copy{font-size:11px;padding:0 .4em;margin-left:.3em;cursor:pointer}
details{margin:.2em 0}summary{cursor:pointer}.add{color:#176f2c}.rm{color:#a33}.chg{color:#845400}
nav a{margin-right:1em}.muted{color:#777}.signed{color:#17692b}.badsig{color:#b00020;font-weight:bold}
`;

const SCRIPT = `
document.addEventListener('click', async (e) => {
  const b = e.target.closest('button.copy');
  if (!b) return;
  const text = b.dataset.copy;
  try { await navigator.clipboard.writeText(text); }
  catch { const t = document.createElement('textarea'); t.value = text; document.body.append(t); t.select(); document.execCommand('copy'); t.remove(); }
  b.textContent = 'copied'; setTimeout(() => { b.textContent = 'copy'; }, 1500);
});
`;

function shaCell(sha: string | null): string {
  if (!sha || !/^[0-9a-f]{64}$/.test(sha))
    return '<span class="muted" title="no .sha256 beside the file and no release records it">unknown</span>';
  return `<code title="${esc(sha)}">${esc(sha.slice(0, 16))}…</code><button class="copy" type="button" data-copy="${esc(sha)}" title="copy the full SHA-256">copy</button>`;
}

function sizeCell(n: number): string {
  return `<td class="num" title="${esc(n)} bytes">${esc(formatBytes(n))}</td>`;
}

function commitCell(c: string | undefined): string {
  return c ? `<code title="${esc(c)}">${esc(c.slice(0, 10))}</code>` : '<span class="muted">–</span>';
}

function links(url: string, shaUrl: string, present: boolean): string {
  if (!present) return '<span class="missing">not in store</span>';
  return `<a href="${esc(url)}" download>download</a> · <a href="${esc(shaUrl)}">.sha256</a>`;
}

function diffSummary(d: Pick<ImageDiff, 'added' | 'removed' | 'changed'>): string {
  return `<span class="add">+${d.added.length}</span> <span class="rm">−${d.removed.length}</span> <span class="chg">~${d.changed.length}</span>`;
}

function diffLists(d: Pick<ImageDiff, 'added' | 'removed' | 'changed'>): string {
  const rows = [
    ...d.added.map((p) => `<li class="add">+ ${esc(p.name)} ${esc(p.version)} (${esc(p.arch)})</li>`),
    ...d.removed.map((p) => `<li class="rm">− ${esc(p.name)} ${esc(p.version)} (${esc(p.arch)})</li>`),
    ...d.changed.map(
      (c) => `<li class="chg">~ ${esc(c.name)} ${esc(c.from)} → ${esc(c.to)} (${esc(c.arch)})</li>`,
    ),
  ];
  return rows.length > 0 ? `<ul>${rows.join('')}</ul>` : '<p class="muted">no package changes</p>';
}

function artifactRow(a: ApiArtifact, date: string): string {
  return `<tr class="artifact" data-kind="${esc(a.kind)}" data-name="${esc(a.name)}">
<td>${esc(a.kind)}</td><td>${esc(a.name)}${a.build ? `<br><code class="muted">${esc(a.build)}</code>` : ''}</td>
${sizeCell(a.size)}<td class="sha">${shaCell(a.sha256)}</td><td>${commitCell(a.git_commit)}</td><td>${esc(date)}</td>
<td>${links(a.url, a.sha256_url, a.present)}</td></tr>`;
}

function releaseDiff(r: ApiRelease): string {
  if (!r.previous) return '<span class="muted">first release</span>';
  if (!r.diff) return `<span class="muted">vs ${esc(r.previous)}: package lists not in the store</span>`;
  return r.diff
    .map(
      (d) =>
        `<details class="diff"><summary>${esc(d.image)} vs ${esc(r.previous)}: ${diffSummary(d)}</summary>${diffLists(d)}</details>`,
    )
    .join('');
}

/** "signed by NAME FPR", "unsigned", or what is wrong with the signature (pure). */
function signatureCell(sig: ApiRelease['signature']): string {
  const cls = sig.status === 'good' ? 'signed' : sig.status === 'unsigned' ? 'muted' : 'badsig';
  return `<span class="signature ${cls}" data-signature="${esc(sig.status)}">· ${esc(sig.text)}</span>`;
}

function releasesSection(releases: readonly ApiRelease[]): string {
  if (releases.length === 0)
    return '<p class="muted">No release is recorded yet (osbake release &lt;R&gt;).</p>';
  const body = releases
    .map(
      (r) => `<tbody class="release" id="release-${esc(r.name)}" data-release="${esc(r.name)}">
<tr class="head"><th colspan="7">${esc(r.name)} <span class="muted">· ${esc(r.date)} · commit ${commitCell(r.git_commit)}</span> ${signatureCell(r.signature)}</th></tr>
${r.artifacts.map((a) => artifactRow(a, r.date)).join('\n')}
<tr class="changes"><td colspan="7">${releaseDiff(r)}</td></tr></tbody>`,
    )
    .join('\n');
  return `<table id="release-table"><thead><tr><th>kind</th><th>name</th><th class="num">size</th><th>sha256</th><th>git commit</th><th>date</th><th>files</th></tr></thead>
${body}</table>`;
}

function packageList(packages: PackageRecord[] | undefined, b: ApiBuild): string {
  if (!packages) return '<span class="muted">no package list</span>';
  const rows = packages
    .map((p) => `<tr><td>${esc(p.name)}</td><td>${esc(p.version)}</td><td>${esc(p.arch)}</td></tr>`)
    .join('');
  const tsv = b.packages_url ? ` · <a href="${esc(b.packages_url)}">.tsv</a>` : '';
  return `<details class="packages"><summary>${esc(packages.length)} packages</summary>${tsv}<table><tr><th>package</th><th>version</th><th>arch</th></tr>${rows}</table></details>`;
}

function buildDiff(b: ApiBuild): string {
  if (!b.diff_base) return '<span class="muted">no earlier release</span>';
  if (!b.diff) return `<span class="muted">vs ${esc(b.diff_base.release)}: no package list</span>`;
  return `<details class="diff"><summary>vs ${esc(b.diff_base.release)}: ${diffSummary(b.diff)}</summary>${diffLists(b.diff)}</details>`;
}

function testCell(b: ApiBuild): string {
  const t = b.test;
  if (!t) return '<td class="muted">–</td>';
  if (t.status === 'skipped') return '<td class="muted">skipped</td>';
  const what = `${t.firmware ?? ''}${t.checks ? `, ${t.checks} checks` : ''}`;
  return `<td class="${t.status === 'passed' ? 'clean' : 'dirty'}" title="${esc(what)}">${esc(t.status)}</td>`;
}

function reproducibleCell(b: ApiBuild): string {
  const r = b.reproducible;
  if (!r) return '<td class="muted">–</td>';
  const when = r.checked.slice(0, 10);
  return r.identical
    ? `<td class="clean" title="osbake rebuild, ${esc(r.checked)}">bit-identical ${esc(when)}</td>`
    : `<td class="dirty" title="osbake rebuild, ${esc(r.checked)}">differs ${esc(when)}</td>`;
}

function buildsSection(builds: readonly ApiBuild[], packages: Catalog['packages']): string {
  if (builds.length === 0) return '<p class="muted">No builds yet (osbake build &lt;image&gt;).</p>';
  const images = [...new Set(builds.map((b) => b.image))];
  return images
    .map((image) => {
      const rows = builds
        .filter((b) => b.image === image)
        .map(
          (b) => `<tr class="build" data-artifact="${esc(b.artifact)}">
<td><code>${esc(b.artifact)}</code>${b.releases.length > 0 ? `<br><span class="muted">in ${esc(b.releases.join(', '))}</span>` : ''}</td>
<td class="${b.clean ? 'clean' : 'dirty'}">${b.clean ? 'clean' : 'dirty'}</td><td>${esc(b.builder)}</td>${testCell(b)}${reproducibleCell(b)}<td>${esc(b.release ?? '–')}</td><td>${esc(b.date.slice(0, 16).replace('T', ' '))}</td>
<td class="num">${esc(b.package_count)}</td>${sizeCell(b.size)}<td class="sha">${shaCell(b.sha256)}</td><td>${commitCell(b.git_commit)}</td>
<td>${packageList(packages.get(b.artifact), b)}${buildDiff(b)}</td><td>${links(b.url, b.sha256_url, b.present)}</td></tr>`,
        )
        .join('\n');
      return `<h3>${esc(image)}</h3><table class="builds" data-image="${esc(image)}"><thead><tr><th>build</th><th>state</th><th>builder</th><th>boot test</th><th>rebuilt</th><th>release</th><th>date (UTC)</th><th class="num">packages</th><th class="num">size</th><th>sha256</th><th>git commit</th><th>contents</th><th>files</th></tr></thead>
${rows}</table>`;
    })
    .join('\n');
}

const STATE_CLASS: Record<string, string> = { done: 'clean', failed: 'dirty', refused: 'dirty' };

/** The "Network installs" section (osbake serve --netboot): one row per node. */
function netbootSection(n: NetbootView): string {
  const rows = n.nodes
    .map((x) => {
      const state = `${x.state}${x.state === 'writing' && x.percent !== undefined ? ` ${x.percent} %` : ''}`;
      const log = x.log ? `<details><summary>last log lines</summary><pre>${esc(x.log)}</pre></details>` : '';
      return `<tr class="node" data-mac="${esc(x.mac)}" data-state="${esc(x.state)}"><td><code>${esc(x.mac)}</code></td><td>${esc(x.name ?? '')}${x.name && x.hostname && x.hostname !== x.name ? ` (${esc(x.hostname)})` : ''}${x.name ? '' : esc(x.hostname ?? (x.configured ? '–' : 'unknown node'))}</td><td>${esc(x.addresses?.join(', ') ?? (x.configured ? 'DHCP' : '–'))}</td><td>${esc(x.target ?? (x.configured ? 'menu' : '–'))}</td>
<td class="${STATE_CLASS[x.state] ?? ''}">${esc(state)}</td><td>${x.bytes === undefined ? '–' : esc(formatBytes(x.bytes))}</td><td>${x.seconds === undefined ? '–' : esc(formatElapsed(x.seconds * 1000))}</td><td>${esc(x.updated ? x.updated.slice(0, 19).replace('T', ' ') : '–')}</td><td>${esc(x.address ?? '–')}</td><td>${esc(x.message ?? '')}${log}</td></tr>`;
    })
    .join('\n');
  return `<p>Release <b>${esc(n.release)}</b> (${esc(n.build)}) is served to nodes that boot <code>/netboot/boot.ipxe</code>; unknown nodes: ${esc(n.unknown)}. <a href="/api/netboot">/api/netboot</a></p>
<table class="netboot"><thead><tr><th>MAC</th><th>node</th><th>addresses</th><th>target</th><th>state</th><th>fetched</th><th>time</th><th>updated (UTC)</th><th>installer's address</th><th>message</th></tr></thead>
${rows || '<tr><td colspan="10" class="muted">no node has booted yet and none is configured (nodes: in osbake.yaml)</td></tr>'}</table>`;
}

/** The whole page. */
export function renderIndexPage(c: Catalog, title = 'osbake artifacts', netboot?: NetbootView): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title><style>${STYLE}</style></head>
<body><h1>${esc(title)}</h1>
<nav><a href="#releases">Releases</a><a href="#builds">Builds</a><a href="/builds/">builds/</a><a href="/repos/">repos/</a><a href="/releases/">releases/</a><a href="/api/releases">/api/releases</a><a href="/api/builds">/api/builds</a>${netboot ? '<a href="#netboot">Network installs</a>' : ''}</nav>
<h2 id="releases">Releases</h2>
${releasesSection(c.releases)}
<h2 id="builds">Builds</h2>
${buildsSection(c.builds, c.packages)}
${netboot ? `<h2 id="netboot">Network installs</h2>\n${netbootSection(netboot)}` : ''}
<p class="muted">data: ${c.source === 'project' ? 'manifest.yaml and images/*/manifest.json' : 'store/releases/*.json and store/builds/'}</p>
<script>${SCRIPT}</script></body></html>
`;
}

export interface ListingEntry {
  name: string;
  directory: boolean;
  size: number;
  mtime: Date;
}

/** A directory listing (pure). `urlPath` is the directory's URL, ending in "/". */
export function renderListing(
  urlPath: string,
  displayPath: string,
  entries: readonly ListingEntry[],
): string {
  const rows = [...entries]
    .sort((a, b) => Number(b.directory) - Number(a.directory) || a.name.localeCompare(b.name))
    .map((e) => {
      const href = `${urlPath}${encodeURIComponent(e.name)}${e.directory ? '/' : ''}`;
      return `<tr><td><a href="${esc(href)}">${esc(e.name)}${e.directory ? '/' : ''}</a></td>${e.directory ? '<td class="num">–</td>' : sizeCell(e.size)}<td>${esc(e.mtime.toISOString().slice(0, 19).replace('T', ' '))}</td></tr>`;
    })
    .join('\n');
  const up = urlPath === '/' ? '' : '<tr><td><a href="../">../</a></td><td></td><td></td></tr>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Index of ${esc(displayPath)}</title><style>${STYLE}</style></head>
<body><h1>Index of ${esc(displayPath)}</h1><p><a href="/">← releases and builds</a></p>
<table class="listing"><thead><tr><th>name</th><th class="num">size</th><th>modified (UTC)</th></tr></thead>
${up}${rows}</table></body></html>
`;
}

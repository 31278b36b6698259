/**
 * serve --netboot's routes: the nodes' reports (POST /netboot/report), /api/netboot, the iPXE
 * scripts, each node's identity and the release's installer files (kernel, initrd, payload pieces).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { normalizeMac } from '../config/netboot.js';
import { nodeByMac } from '../config/nodes.js';
import { identityBlock } from '../installer/node-identity.js';
import {
  baseUrl,
  chainScript,
  mayRecord,
  type NetbootContext,
  netbootView,
  nodeScript,
  parseReport,
  readNode,
  readNodes,
  updateNode,
} from '../netboot/netboot.js';
import { serveFile } from './files.js';
import { REPORT_MAX_BYTES, readBody, reply, STATUS_BODIES } from './http.js';
import { checkRequestPath } from './paths.js';

/** The client's address and the Host it asked for (behind nginx: from nginx's headers). */
export function clientOf(
  req: IncomingMessage,
  behindProxy: boolean | undefined,
): { address: string; host: string | undefined } {
  const h = (name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  if (behindProxy) {
    return { address: h('x-forwarded-for') ?? '-', host: h('x-forwarded-host') };
  }
  return { address: req.socket.remoteAddress ?? '-', host: h('host') };
}

export async function handleNetboot(
  req: IncomingMessage,
  res: ServerResponse,
  nb: NetbootContext,
  pathOnly: string,
  url: string,
  o: { behindProxy?: boolean; log: (line: string) => void },
): Promise<void> {
  const noStore = { 'Cache-Control': 'no-store' };
  const getOnly = () => reply(req, res, 405, 'only GET and HEAD\n', undefined, { Allow: 'GET, HEAD' });
  if (pathOnly === '/netboot/report') {
    if (req.method !== 'POST') return reply(req, res, 405, 'only POST\n', undefined, { Allow: 'POST' });
    const type = String(req.headers['content-type'] ?? '')
      .split(';')[0]
      ?.trim()
      .toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      return reply(req, res, 415, 'send application/x-www-form-urlencoded (curl --data-urlencode)\n');
    }
    const body = await readBody(req, REPORT_MAX_BYTES);
    if (body === undefined)
      return reply(req, res, 413, STATUS_BODIES[413] as string, undefined, { Connection: 'close' });
    const report = parseReport(body);
    if (typeof report === 'string') return reply(req, res, 400, `bad report: ${report}\n`);
    if (!nodeByMac(nb.nodes, report.mac) && nb.config.unknown === 'refuse') {
      return reply(req, res, 403, 'not a node of this server\n');
    }
    if (!(await mayRecord(nb.nodesDir, nb.nodes, report.mac))) {
      return reply(req, res, 429, 'too many unknown nodes recorded\n');
    }
    await updateNode(nb.nodesDir, report.mac, {
      ...report,
      release: nb.release.release,
      address: clientOf(req, o.behindProxy).address,
    });
    return reply(req, res, 200, 'ok\n', undefined, noStore);
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return getOnly();
  if (pathOnly === '/api/netboot') {
    const view = netbootView(nb, await readNodes(nb.nodesDir));
    return reply(req, res, 200, `${JSON.stringify(view, null, 2)}\n`, 'application/json', {
      'Cache-Control': 'no-cache',
    });
  }
  if (pathOnly === '/netboot/boot.ipxe') {
    const base = baseUrl(nb.config, clientOf(req, o.behindProxy).host);
    if (!base) return reply(req, res, 400, 'bad Host header (or set netboot.url in osbake.yaml)\n');
    const query = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
    const macText = query.get('mac');
    if (macText === null)
      return reply(req, res, 200, chainScript(base), 'text/plain; charset=utf-8', noStore);
    const mac = normalizeMac(macText);
    if (!mac) return reply(req, res, 400, 'mac: not a MAC address\n');
    const s = nodeScript(base, nb, mac, await readNode(nb.nodesDir, mac));
    if (s.kind === 'refuse' && req.method === 'GET' && (await mayRecord(nb.nodesDir, nb.nodes, mac))) {
      await updateNode(nb.nodesDir, mac, {
        state: 'refused',
        message: 'not in nodes: of osbake.yaml',
        address: clientOf(req, o.behindProxy).address,
      });
    }
    return reply(req, res, 200, s.script, 'text/plain; charset=utf-8', noStore);
  }
  // A node's identity (nodes: in osbake.yaml), fetched by its installer; 404 for a node without one.
  if (/^\/netboot\/node\/[^/]+$/.test(pathOnly)) {
    // Decoded as every path is (a malformed escape is a 400, not an error of the server).
    const p = checkRequestPath(pathOnly);
    const mac = p.ok ? normalizeMac(p.segments[2] ?? '') : undefined;
    if (!mac) return reply(req, res, 400, 'not a MAC address\n');
    const node = nodeByMac(nb.nodes, mac);
    if (!node) return reply(req, res, 404, 'no such node\n', undefined, noStore);
    return reply(req, res, 200, await identityBlock(node, nb.root), 'text/plain; charset=utf-8', noStore);
  }
  const m = /^\/netboot\/([^/]+)\/([^/]+)$/.exec(pathOnly);
  if (m && m[1] === nb.release.release && nb.release.files.includes(m[2] as string)) {
    return serveFile(req, res, join(nb.release.dir, m[2] as string), nb.release.dir, o.log);
  }
  return reply(req, res, 404, 'not found\n');
}

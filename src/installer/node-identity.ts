/**
 * A node's identity as the installer reads it: one block of "key value" lines per node, the same
 * for a network install (GET /netboot/node/<mac>: that node's block) and a stick
 * (osbake/nodes.conf on its data partition: every node's block, covered by the signed SHA256SUMS).
 * The installer's identity.sh picks a block (by MAC, DMI serial or the menu's choice) and writes
 * it into the installed root. Every value is one word checked by config/nodes.ts; SSH keys and
 * file contents are base64, so nothing in a block is ever shell or sed syntax.
 *
 *   node node01            name        hostname node01       mac 52:54:00:0b:00:01
 *   serial OSB-1           target /dev/vda                   then poweroff
 *   nic 52:54:00:0b:00:01  dhcp no     address 10.0.2.21/24  gateway 10.0.2.2
 *   gateway6 fd00::1       dns 10.0.2.3                      search cluster.example
 *   key root <base64 of the key line>  file 0644 /etc/hosts <base64 of the bytes>
 *   end
 */
import { resolve } from 'node:path';
import { type ClusterNode, NODE_FILE_MAX_BYTES, NODE_FILES_MAX_BYTES } from '../config/nodes.js';
import { UserError } from '../errors.js';
import { readInputBytes } from '../fsx/input.js';

export const IDENTITY_HEADER = '# osbake node identities (read by the installer, not a script)\n';

/** The bytes of each file of a node: inline content, or the project file read through the input module. */
async function fileBytes(node: ClusterNode, projectRoot: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  let total = 0;
  for (const f of node.files) {
    const bytes =
      f.content !== undefined
        ? Buffer.from(f.content)
        : await readInputBytes(resolve(projectRoot, f.source ?? ''), {
            what: `nodes.${node.name}.files ${f.path}: source`,
            maxBytes: NODE_FILE_MAX_BYTES,
            within: projectRoot,
          });
    total += bytes.length;
    if (total > NODE_FILES_MAX_BYTES) {
      throw new UserError(
        'E_CONFIG',
        `nodes.${node.name}.files: more than ${NODE_FILES_MAX_BYTES / 1024 / 1024} MiB in all`,
        'put large files into the image (its playbook); nodes: files are for per-node settings',
      );
    }
    out.push(bytes);
  }
  return out;
}

/** One node's block (reads its files' sources). */
export async function identityBlock(node: ClusterNode, projectRoot: string): Promise<string> {
  const lines = [`node ${node.name}`];
  if (node.hostname) lines.push(`hostname ${node.hostname}`);
  for (const m of node.macs) lines.push(`mac ${m}`);
  if (node.serial) lines.push(`serial ${node.serial}`);
  if (node.target) lines.push(`target ${node.target}`);
  lines.push(`then ${node.then}`);
  const net = node.network;
  if (net) {
    const nic = net.interface ?? node.macs[0];
    if (nic) lines.push(`nic ${nic.toLowerCase()}`);
    const v4 = net.addresses.some((a) => !a.includes(':'));
    lines.push(`dhcp ${(net.dhcp ?? !v4) ? 'yes' : 'no'}`);
    for (const a of net.addresses) lines.push(`address ${a}`);
    if (net.gateway) lines.push(`gateway ${net.gateway}`);
    if (net.gateway6) lines.push(`gateway6 ${net.gateway6}`);
    for (const d of net.dns) lines.push(`dns ${d}`);
    for (const s of net.search) lines.push(`search ${s}`);
  }
  for (const [user, keys] of Object.entries(node.authorizedKeys)) {
    for (const k of keys) lines.push(`key ${user} ${Buffer.from(k).toString('base64')}`);
  }
  const bytes = await fileBytes(node, projectRoot);
  node.files.forEach((f, i) => {
    const mode = f.mode.length === 3 ? `0${f.mode}` : f.mode;
    lines.push(`file ${mode} ${f.path} ${(bytes[i] as Buffer).toString('base64')}`);
  });
  lines.push('end');
  return `${lines.join('\n')}\n`;
}

/** Every node's block (the stick's osbake/nodes.conf), or undefined without nodes. */
export async function identitiesText(
  nodes: readonly ClusterNode[],
  projectRoot: string,
): Promise<string | undefined> {
  if (nodes.length === 0) return undefined;
  const blocks = [];
  for (const n of nodes) blocks.push(await identityBlock(n, projectRoot));
  return IDENTITY_HEADER + blocks.join('');
}

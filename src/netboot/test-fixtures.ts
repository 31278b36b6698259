/** What the netboot unit tests share: a served release, a node configuration, scratch dirs. */
import { rm } from 'node:fs/promises';
import { NetbootSchema } from '../config/netboot.js';
import { clusterNodes } from '../config/nodes.js';
import type { NetbootRelease } from './files.js';

export const release: NetbootRelease = {
  release: 'r1',
  dir: '/cache/x',
  files: ['vmlinuz', 'initrd.img', 'payload.zst'],
  stickSha256: 'a'.repeat(64),
  build: 'debian12-base-r1-main-0123abcd',
  ranges: 3,
  payloadBytes: 1000,
  payloadFile: 'payload.zst',
  checked: 'ok',
};

export const config = NetbootSchema.parse({
  unknown: 'refuse',
  nodes: {
    '52-54-00-AA-BB-01': { hostname: 'node01', target: 'vda', then: 'reboot' },
    '525400aabb02': { target: '/dev/nvme0n1' },
  },
});

/** The same nodes as osbake uses them (netboot.nodes is the older spelling of nodes:). */
export const nodes = clusterNodes({}, config);

/** Scratch directories made by a test file, removed by removeDirs() in its afterAll. */
export const dirs: string[] = [];
export async function removeDirs(): Promise<void> {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
}

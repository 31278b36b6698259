import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { parseYamlConfig } from './load.js';
import { canonicalIp, inSubnet, parseCidr, projectNodes, publicKeyProblem } from './nodes.js';
import { ProjectConfigSchema } from './project.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDkSTpFunTaDA6i4HF4TZcfHXgNjiXG224xtfrOr5s2c ops@site';

function parse(yaml: string) {
  return parseYamlConfig('osbake.yaml', yaml, ProjectConfigSchema);
}

function problems(yaml: string): string[] {
  try {
    parse(yaml);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues.map((i) => `${i.path} ${i.message}`);
  }
  return [];
}

const GOOD = `
nodes:
  node01:
    mac: 52-54-00-0B-00-01
    target: vda
    network:
      addresses: [10.0.2.21/24, "fd00::21/64"]
      gateway: 10.0.2.2
      gateway6: fd00::1
      dns: [10.0.2.3]
      search: [cluster.example]
    authorizedKeys:
      root: ["${KEY}"]
    files:
      - path: /etc/issue.d/osbake.issue
        content: "node01"
  stick-node:
    hostname: node02
    serial: OSB-0002
netboot:
  nodes:
    "52:54:00:0b:00:09": { hostname: node09 }
`;

describe('nodes: in osbake.yaml', () => {
  it('merges nodes: and the older netboot.nodes into one list', () => {
    const nodes = projectNodes(parse(GOOD));
    expect(nodes.map((n) => [n.name, n.hostname, n.macs, n.serial])).toEqual([
      ['node01', 'node01', ['52:54:00:0b:00:01'], undefined],
      ['stick-node', 'node02', [], 'OSB-0002'],
      ['node09', 'node09', ['52:54:00:0b:00:09'], undefined],
    ]);
    expect(nodes[0]?.target).toBe('/dev/vda');
    expect(nodes[0]?.network?.addresses).toEqual(['10.0.2.21/24', 'fd00::21/64']);
    expect(problems(GOOD)).toEqual([]);
  });

  it('refuses duplicate MACs, serials, hostnames and addresses across nodes, in both spellings', () => {
    const p = problems(`
nodes:
  a: { mac: "52:54:00:00:00:01", serial: S1, network: { addresses: [10.0.0.5/24] } }
  b: { mac: "5254.0000.0001", serial: S1, hostname: a, network: { addresses: [10.0.0.5/16] } }
  c: { network: { addresses: ["fd00::0:5/64"] } }
  d: { network: { addresses: ["fd00::5/64"] } }
netboot:
  nodes:
    "52-54-00-00-00-01": { hostname: z }
`).join('\n');
    expect(p).toMatch(/MAC 52:54:00:00:00:01 is already that of node a/);
    expect(p).toMatch(/serial S1 is already that of node a/);
    expect(p).toMatch(/hostname a is already that of node a/);
    expect(p).toMatch(/address 10\.0\.0\.5 is already that of node a/);
    expect(p).toMatch(/address fd00::5 is already that of node c/);
    expect(p.split('\n').filter((l) => l.includes('already')).length).toBe(6);
  });

  it('refuses bad prefixes, a gateway outside the subnet, network and broadcast addresses', () => {
    const p = (net: string) => problems(`nodes:\n  n1:\n    network: ${net}\n`).join('\n');
    expect(p('{ addresses: [10.0.0.5/33] }')).toMatch(/not ADDRESS\/PREFIX/);
    expect(p('{ addresses: [10.0.0.5/0] }')).toMatch(/not ADDRESS\/PREFIX/);
    expect(p('{ addresses: [10.0.0.5] }')).toMatch(/not ADDRESS\/PREFIX/);
    expect(p('{ addresses: ["fd00::5/129"] }')).toMatch(/not ADDRESS\/PREFIX/);
    expect(p('{ addresses: [10.0.0.5/24], gateway: 10.0.1.1 }')).toMatch(/10\.0\.1\.1 is outside the subnet/);
    expect(p('{ addresses: [10.0.0.5/24], gateway: 10.0.0.5 }')).toMatch(/own address/);
    expect(p('{ addresses: [10.0.0.0/24] }')).toMatch(/network address/);
    expect(p('{ addresses: [10.0.0.255/24] }')).toMatch(/broadcast address/);
    expect(p('{ addresses: [127.0.0.5/8] }')).toMatch(/not a host address/);
    expect(p('{ gateway: 10.0.0.1 }')).toMatch(/needs a static IPv4 address/);
    expect(p('{ addresses: ["fd00::5/64"], gateway6: "fd01::1" }')).toMatch(/outside the subnet/);
    expect(p('{ addresses: [10.0.0.5/24], dhcp: true }')).toMatch(/choose one/);
    expect(p('{ dhcp: false }')).toMatch(/unreachable/);
    expect(p('{ dns: [not-an-ip] }')).toMatch(/IPv4 or IPv6/);
    expect(p('{ addresses: [10.0.0.5/24], mtu: 9000 }')).toMatch(/mtu/);
    // Good: a /31 and /32 have no network or broadcast address; a link-local IPv6 router.
    expect(p('{ addresses: [10.0.0.0/31] }')).toBe('');
    expect(p('{ addresses: ["fd00::5/64"], gateway6: "fe80::1" }')).toBe('');
  });

  it('refuses unknown keys, bad names, keys that are not SSH keys and unsafe file paths', () => {
    expect(problems('nodes:\n  n1: { colour: red }\n').join()).toMatch(/colour/);
    expect(problems('nodes:\n  "bad name": { hostname: x }\n').join()).toMatch(/node name/);
    expect(problems('nodes:\n  n_1: {}\n').join()).toMatch(/give hostname:/);
    expect(problems('nodes:\n  n1: { mac: "01:00:5e:00:00:01" }\n').join()).toMatch(/not a node's MAC/);
    const keys = (k: string) => problems(`nodes:\n  n1:\n    authorizedKeys:\n      root: ["${k}"]\n`).join();
    expect(keys(KEY.replace('AAAAC3', 'AAAAB3'))).toMatch(/not a ssh-ed25519 key/);
    expect(keys(KEY.slice(0, 60))).toMatch(/not a ssh-ed25519 key|truncated/);
    expect(keys(`command=/bin/sh ${KEY}`)).toMatch(/no options/);
    expect(keys('ssh-dss AAAA')).toMatch(/not one sshd accepts/);
    expect(problems(`nodes:\n  n1:\n    authorizedKeys:\n      "r$oot": ["${KEY}"]\n`).join()).toMatch(
      /not a user name/,
    );
    const file = (f: string) => problems(`nodes:\n  n1:\n    files: [${f}]\n`).join();
    expect(file('{ path: /etc/../shadow, content: x }')).toMatch(/\.\./);
    expect(file('{ path: etc/hosts, content: x }')).toMatch(/absolute/);
    expect(file('{ path: "/etc/a b", content: x }')).toMatch(/plain names/);
    expect(file('{ path: /proc/sys/x, content: x }')).toMatch(/under \/proc/);
    expect(file('{ path: /etc/x }')).toMatch(/exactly one of source/);
    expect(file('{ path: /etc/x, source: ../secret }')).toMatch(/inside the project/);
    expect(file('{ path: /etc/x, content: x, mode: "999" }')).toMatch(/octal/);
    expect(file('{ path: /etc/x, content: x }, { path: /etc/x, content: y }')).toMatch(/given twice/);
  });

  it('parses and compares addresses', () => {
    expect(parseCidr('10.0.2.21/24')).toEqual({ address: '10.0.2.21', prefix: 24, family: 4 });
    expect(parseCidr('10.0.2.256/24')).toBeUndefined();
    expect(canonicalIp('fd00:0:0::21')).toBe('fd00::21');
    expect(inSubnet({ address: '10.0.2.21', prefix: 24, family: 4 }, '10.0.2.2')).toBe(true);
    expect(inSubnet({ address: '10.0.2.21', prefix: 24, family: 4 }, 'fd00::1')).toBe(false);
    expect(publicKeyProblem(KEY)).toBeUndefined();
    expect(publicKeyProblem(`${KEY}\nssh-ed25519 x`)).toMatch(/one line/);
  });
});

/**
 * Parser for `packer build -machine-readable` output: lines of `timestamp,target,type,data...`
 * where commas inside data are written `%!(PACKER_COMMA)` and newlines a literal `\n`.
 */

export interface PackerLine {
  timestamp: number;
  target: string;
  type: string;
  data: string[];
}

export function unescapePackerField(s: string): string {
  return s.replaceAll('%!(PACKER_COMMA)', ',').replaceAll('\\n', '\n').replaceAll('\\r', '\r');
}

export function parsePackerLine(line: string): PackerLine | undefined {
  const parts = line.split(',');
  if (parts.length < 3) return undefined;
  const [ts, target, type, ...data] = parts as [string, string, string, ...string[]];
  if (!/^\d+$/.test(ts)) return undefined;
  return { timestamp: Number(ts), target, type, data: data.map(unescapePackerField) };
}

/**
 * Packer's human output (used with -debug, whose pauses need the interactive UI): "==> x: step"
 * lines become `say`, indented lines `message`, so the same interpreter handles both.
 */
export function parseHumanPackerLine(line: string): PackerLine | undefined {
  if (line.startsWith('==> ')) return { timestamp: 0, target: '', type: 'ui', data: ['say', line] };
  if (/^\s{4}\S/.test(line)) return { timestamp: 0, target: '', type: 'ui', data: ['message', line] };
  if (/^Build '.*' errored/.test(line))
    return { timestamp: 0, target: '', type: 'ui', data: ['error', line] };
  return undefined;
}

export type PackerEvent =
  | { kind: 'step'; text: string }
  | { kind: 'task'; text: string }
  | { kind: 'message'; text: string }
  | { kind: 'error'; text: string }
  | { kind: 'artifact'; build: string; index: number; key: string; values: string[] }
  | { kind: 'other'; line: PackerLine };

const STEP_RE = /^==> (?:[\w.-]+: )?(.*)$/s;
const TASK_RE = /^\s*(?:[\w.-]+: )?(TASK \[[^\]]*\]|PLAY \[[^\]]*\]|PLAY RECAP)/;

/** Classify a parsed line: step header, Ansible task, plain message, error or artifact. */
export function interpretPackerLine(p: PackerLine): PackerEvent {
  const first = p.data[1] ?? '';
  if (p.type === 'ui' && p.data[0] === 'say') {
    const m = STEP_RE.exec(first);
    if (m) return { kind: 'step', text: (m[1] ?? '').trim() };
    return { kind: 'message', text: first };
  }
  if (p.type === 'ui' && p.data[0] === 'message') {
    const m = TASK_RE.exec(first);
    if (m) return { kind: 'task', text: (m[1] ?? '').trim() };
    return { kind: 'message', text: first };
  }
  if (p.type === 'ui' && p.data[0] === 'error') return { kind: 'error', text: first };
  if (p.type === 'error') return { kind: 'error', text: p.data[0] ?? '' };
  if (p.type === 'artifact') {
    return {
      kind: 'artifact',
      build: p.target,
      index: Number(p.data[0]),
      key: p.data[1] ?? '',
      values: p.data.slice(2),
    };
  }
  return { kind: 'other', line: p };
}

/** Human-readable text of a machine-readable line, for logs and error tails. */
export function packerLineText(p: PackerLine): string {
  if (p.type === 'ui') return p.data.slice(1).join(',');
  return `${p.target ? `${p.target}: ` : ''}${p.type}: ${p.data.join(' ')}`;
}

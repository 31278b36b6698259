import { describe, expect, it } from 'vitest';
import { interpretPackerLine, parseHumanPackerLine, parsePackerLine } from './machine-readable.js';

describe('parsePackerLine', () => {
  it('splits fields and unescapes commas and newlines', () => {
    const p = parsePackerLine('1795629647,,ui,say,==> qemu.x: a%!(PACKER_COMMA) b\\nc');
    expect(p).toEqual({
      timestamp: 1795629647,
      target: '',
      type: 'ui',
      data: ['say', '==> qemu.x: a, b\nc'],
    });
  });

  it('ignores lines that are not machine-readable', () => {
    expect(parsePackerLine('plain text')).toBeUndefined();
    expect(parsePackerLine('abc,,ui,say,x')).toBeUndefined();
  });
});

describe('interpretPackerLine', () => {
  const ev = (line: string) => {
    const p = parsePackerLine(line);
    if (!p) throw new Error('unparsed');
    return interpretPackerLine(p);
  };

  it.each([
    [
      '1,,ui,say,==> qemu.debian12-base: Waiting for SSH to become available...',
      { kind: 'step', text: 'Waiting for SSH to become available...' },
    ],
    ['1,,ui,say,==> Wait completed after 1 minute', { kind: 'step', text: 'Wait completed after 1 minute' }],
    [
      '1,,ui,message,    qemu.debian12-base: TASK [base : Install the internet-dependent packages] ****',
      { kind: 'task', text: 'TASK [base : Install the internet-dependent packages]' },
    ],
    ['1,,ui,message,    qemu.debian12-base: PLAY RECAP *********', { kind: 'task', text: 'PLAY RECAP' }],
    [
      '1,,ui,message,    qemu.debian12-base: ok: [default]',
      { kind: 'message', text: '    qemu.debian12-base: ok: [default]' },
    ],
    [
      "1,,ui,error,Build 'qemu.x' errored after 10 seconds: Timeout waiting for SSH.",
      { kind: 'error', text: "Build 'qemu.x' errored after 10 seconds: Timeout waiting for SSH." },
    ],
    ['1,debian12-base,error,Timeout waiting for SSH.', { kind: 'error', text: 'Timeout waiting for SSH.' }],
    [
      '1,debian12-base,artifact,0,file,0,output/x.qcow2',
      { kind: 'artifact', build: 'debian12-base', index: 0, key: 'file', values: ['0', 'output/x.qcow2'] },
    ],
  ])('%s', (line, expected) => {
    expect(ev(line)).toEqual(expected);
  });
});

describe('parseHumanPackerLine (-debug output)', () => {
  it.each([
    [
      '==> qemu.x: Found port for communicator (SSH, WinRM, etc): 3333.',
      { kind: 'step', text: 'Found port for communicator (SSH, WinRM, etc): 3333.' },
    ],
    ['    qemu.x: TASK [base : Install] ***', { kind: 'task', text: 'TASK [base : Install]' }],
    [
      "Build 'qemu.x' errored after 1 second: boom",
      { kind: 'error', text: "Build 'qemu.x' errored after 1 second: boom" },
    ],
  ])('%s', (line, expected) => {
    const p = parseHumanPackerLine(line);
    expect(p && interpretPackerLine(p)).toEqual(expected);
  });

  it('ignores other lines', () => {
    expect(parseHumanPackerLine('Debug mode enabled. Builds will not be parallelized.')).toBeUndefined();
  });
});

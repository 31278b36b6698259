/**
 * Live progress on stderr: on a terminal one status line rewritten in place
 * ("[4/8] packer · Provisioning with Ansible · 01:23 · TASK [base : ...]"); elsewhere (CI, pipes)
 * one plain line per change, so logs stay readable.
 */

export function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export interface ProgressState {
  index: number;
  total: number;
  step: string;
  detail?: string;
  task?: string;
  elapsedMs: number;
}

export function formatStatus(s: ProgressState, width = 120): string {
  const parts = [`[${s.index}/${s.total}] ${s.step}`];
  if (s.detail) parts.push(s.detail);
  parts.push(formatElapsed(s.elapsedMs));
  if (s.task) parts.push(s.task);
  const line = parts.join(' · ');
  return line.length > width ? `${line.slice(0, width - 1)}…` : line;
}

export class Progress {
  private state: ProgressState = { index: 0, total: 0, step: '', elapsedMs: 0 };
  private readonly start = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private lastPlain = '';

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly live = Boolean(process.stderr.isTTY) && process.env.CI !== 'true',
  ) {
    if (this.live) {
      this.timer = setInterval(() => this.render(), 1000);
      this.timer.unref();
    }
  }

  step(index: number, total: number, step: string): void {
    this.state = { index, total, step, elapsedMs: Date.now() - this.start };
    this.render(true);
  }

  detail(text: string): void {
    const first = text.split('\n')[0] ?? '';
    this.state.detail = first.length > 90 ? `${first.slice(0, 89)}…` : first;
    this.state.task = undefined;
    this.render(true);
  }

  task(text: string): void {
    this.state.task = text;
    this.render(true);
  }

  /** Print a line above the status line. */
  say(text: string): void {
    if (this.live) this.out.write('\r\x1b[2K');
    this.out.write(`${text}\n`);
    this.render();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.live) this.out.write('\r\x1b[2K');
  }

  private render(changed = false): void {
    this.state.elapsedMs = Date.now() - this.start;
    if (this.live) {
      const width = Math.max(40, (this.out.columns ?? 120) - 1);
      this.out.write(`\r\x1b[2K${formatStatus(this.state, width)}`);
    } else if (changed) {
      const line = formatStatus({ ...this.state, elapsedMs: this.state.elapsedMs }, 400);
      const key = line.replace(/ · \d+(:\d\d)+/, '');
      if (key !== this.lastPlain) this.out.write(`${line}\n`);
      this.lastPlain = key;
    }
  }
}

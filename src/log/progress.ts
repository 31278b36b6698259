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

/** 1536 → "1.5 KiB" (binary units, as du -h and qemu-img print them). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

export interface ByteProgressState {
  label: string;
  done: number;
  total?: number;
  elapsedMs: number;
}

/** "debian12-base · 512.0 MiB / 1.2 GiB (42%) · 85.3 MiB/s · ETA 00:08" */
export function formatByteProgress(s: ByteProgressState, width = 120): string {
  const parts = [s.label];
  const rate = s.elapsedMs > 0 ? (s.done * 1000) / s.elapsedMs : 0;
  if (s.total !== undefined && s.total > 0) {
    const pct = Math.min(100, Math.floor((s.done * 100) / s.total));
    parts.push(`${formatBytes(s.done)} / ${formatBytes(s.total)} (${pct}%)`);
  } else {
    parts.push(formatBytes(s.done));
  }
  parts.push(`${formatBytes(Math.round(rate))}/s`);
  if (s.total !== undefined && rate > 0 && s.done < s.total) {
    parts.push(`ETA ${formatElapsed(((s.total - s.done) * 1000) / rate)}`);
  }
  const line = parts.join(' · ');
  return line.length > width ? `${line.slice(0, width - 1)}…` : line;
}

/** Where a verb writes its text (process.stdout, or a test's collector). */
export type TextOut = Pick<NodeJS.WriteStream, 'write'>;
type ProgressOut = TextOut & { columns?: number };

/**
 * Progress of one transfer or checksum (bytes, rate, ETA) on stderr: a status line rewritten at
 * most every 100 ms on a terminal; elsewhere one plain line at each quarter of the total (every
 * 256 MiB when the total is unknown).
 */
export class ByteProgress {
  private state: ByteProgressState = { label: '', done: 0, elapsedMs: 0 };
  private started = 0;
  private lastRender = 0;
  private nextPlain = 0;

  constructor(
    private readonly out: ProgressOut = process.stderr,
    private readonly live = Boolean(process.stderr.isTTY) && process.env.CI !== 'true',
    private readonly now: () => number = Date.now,
  ) {}

  start(label: string, total?: number): void {
    this.started = this.now();
    this.lastRender = 0;
    this.state = { label, done: 0, total, elapsedMs: 0 };
    this.nextPlain = this.plainStep();
    this.render(true);
  }

  add(n: number): void {
    this.state.done += n;
    this.render(false);
  }

  /** Clear the status line (the caller then prints the result). */
  end(): void {
    if (this.live) this.out.write('\r\x1b[2K');
  }

  private plainStep(): number {
    const t = this.state.total;
    return t !== undefined && t > 0 ? Math.ceil(t / 4) : 256 * 1024 * 1024;
  }

  private render(first: boolean): void {
    const now = this.now();
    this.state.elapsedMs = now - this.started;
    if (this.live) {
      if (!first && now - this.lastRender < 100) return;
      this.lastRender = now;
      const width = Math.max(40, (this.out.columns ?? 120) - 1);
      this.out.write(`\r\x1b[2K${formatByteProgress(this.state, width)}`);
      return;
    }
    const t = this.state.total;
    if (this.state.done >= this.nextPlain && (t === undefined || this.state.done < t)) {
      this.out.write(`${formatByteProgress(this.state, 400)}\n`);
      while (this.nextPlain <= this.state.done) this.nextPlain += this.plainStep();
    }
  }
}

/** Reports progress of the bytes read for one artifact (ByteProgress, or nothing). */
export interface ProgressSink {
  start(label: string, total?: number): void;
  add(n: number): void;
  end(): void;
}

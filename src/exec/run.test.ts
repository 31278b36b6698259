import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ProcessError, UserError } from '../errors.js';
import { createNullLogger } from '../log/logger.js';
import { capture, run, runStreaming, shellQuote, startService } from './run.js';

const log = createNullLogger();

describe('run', () => {
  it('captures stdout and streams lines', async () => {
    const lines: string[] = [];
    const out = await capture(['printf', 'a\\nb\\n'], { log, onLine: (l) => lines.push(l) });
    expect(out).toBe('a\nb');
    expect(lines).toEqual(['a', 'b']);
  });

  it('throws ProcessError with the output tail on failure', async () => {
    const err = await run(['sh', '-c', 'echo oops >&2; exit 3'], { log }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcessError);
    expect((err as ProcessError).exitCode).toBe(3);
    expect((err as ProcessError).outputTail).toEqual(['oops']);
  });

  it('names the Debian package of a missing tool', async () => {
    const err = await run(['mmdebstrap-not-here'], { log }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    const known = await run(['packer'], { log, env: { PATH: '/nonexistent' } }).catch((e: unknown) => e);
    expect((known as UserError).message).toBe('packer not found');
    expect((known as UserError).hint).toBe('install it with: apt-get install packer');
  });

  it('closes stdin', async () => {
    expect(await capture(['cat'], { log })).toBe('');
  });

  it('feeds input when given', async () => {
    expect(await capture(['cat'], { log, input: 'hello' })).toBe('hello');
  });

  it('stops the child on abort', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const t0 = Date.now();
    await expect(run(['sleep', '30'], { log, signal: ac.signal })).rejects.toThrow(/interrupted/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('on abort, signals the process group when the child waits on a grandchild (Packer → Ansible)', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const lines: string[] = [];
    const t0 = Date.now();
    // sh defers its INT trap until its foreground child exits; only the group signal stops sleep.
    await expect(
      run(['sh', '-c', 'trap "echo trapped" INT; sleep 30; echo after'], {
        log,
        signal: ac.signal,
        cancelSignal: 'SIGINT',
        cancelGroupAfterMs: 300,
        cancelGraceMs: 20_000,
        onLine: (l) => lines.push(l),
      }),
    ).rejects.toThrow(/interrupted/);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(lines).toContain('trapped');
  });

  it('kills the process group when the cancel signal is not enough', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const t0 = Date.now();
    await expect(
      run(['sh', '-c', 'trap "" INT; while :; do sleep 0.1; done'], {
        log,
        signal: ac.signal,
        cancelSignal: 'SIGINT',
        cancelGroupAfterMs: 100,
        cancelGraceMs: 600,
      }),
    ).rejects.toThrow(/interrupted/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('runStreaming: hands stdout over as bytes and checks the exit code', async () => {
    const s = runStreaming(['sh', '-c', 'printf abc; echo warn >&2'], { log });
    const chunks: Buffer[] = [];
    for await (const c of s.stdout) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('abc');
    expect((await s.done).tail).toEqual(['warn']);
    const bad = runStreaming(['sh', '-c', 'exit 4'], { log });
    await expect(bad.done).rejects.toBeInstanceOf(ProcessError);
  });

  it('runStreaming: on abort, signals the group and then kills it like run()', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const t0 = Date.now();
    // sleep inherits the ignored TERM and holds the pipes open: only SIGKILL to the group ends it.
    const s = runStreaming(['sh', '-c', 'trap "" INT TERM; sleep 30; echo after'], {
      log,
      signal: ac.signal,
      cancelGroupAfterMs: 100,
      cancelGraceMs: 600,
    });
    s.stdout.resume();
    await expect(s.done).rejects.toThrow(/interrupted/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('quotes for copy-paste', () => {
    expect(shellQuote(['packer', 'build', '-var', 'a=b c', "it's"])).toBe(
      `packer build -var 'a=b c' 'it'\\''s'`,
    );
  });
});

describe('startService', () => {
  /** Lines the service printed on stderr, and a promise for the first one matching `re`. */
  const watch = () => {
    const lines: string[] = [];
    const waiters: [RegExp, () => void][] = [];
    return {
      lines,
      onStderrLine(l: string) {
        lines.push(l);
        for (const [re, done] of waiters) if (re.test(l)) done();
      },
      seen: (re: RegExp) =>
        new Promise<void>((resolve) => {
          if (lines.some((l) => re.test(l))) resolve();
          else waiters.push([re, resolve]);
        }),
    };
  };

  it('runs in its own process group; stop() sends the graceful signal and waits for the exit', async () => {
    const w = watch();
    const svc = startService(
      ['sh', '-c', 'trap "echo quitting >&2; exit 3" QUIT; echo ready >&2; while :; do sleep 0.05; done'],
      { log, onStderrLine: w.onStderrLine },
    );
    await w.seen(/ready/);
    // /proc/<pid>/stat field 5 is the process group: the service leads its own.
    const stat = readFileSync(`/proc/${svc.pid}/stat`, 'utf8');
    expect(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]).toBe(String(svc.pid));
    await svc.stop('SIGQUIT', 5_000);
    expect(await svc.exited).toBe(3);
    expect(w.lines).toContain('quitting');
  });

  it('a service that ignores the graceful signal gets SIGTERM after graceMs', async () => {
    const w = watch();
    const svc = startService(['sh', '-c', 'trap "" QUIT; echo ready >&2; while :; do sleep 0.05; done'], {
      log,
      onStderrLine: w.onStderrLine,
    });
    await w.seen(/ready/);
    const t = performance.now();
    await svc.stop('SIGQUIT', 300);
    expect(await svc.exited).toBeNull(); // ended by SIGTERM
    expect(performance.now() - t).toBeGreaterThanOrEqual(250);
  });

  it('a missing program: exited resolves with 127', async () => {
    const svc = startService(['osbake-no-such-server'], { log });
    expect(await svc.exited).toBe(127);
  });
});

describe('dieWithParent', () => {
  it('names the missing program, not setpriv', async () => {
    await expect(
      run(['osbake-no-such-tool'], { log: createNullLogger(), dieWithParent: true }),
    ).rejects.toThrow(/osbake-no-such-tool not found/);
  });
});

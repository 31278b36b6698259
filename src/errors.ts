/** An error the user can fix: printed as one line plus a hint, never with a stack trace (unless --debug). */
export class UserError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** A failure a child process (a serve worker) has already reported on the shared stderr: exit with its code, say nothing more. */
export class ReportedError extends Error {
  constructor(readonly exitCode: number) {
    super(`already reported (exit code ${exitCode})`);
    this.name = 'ReportedError';
  }
}

export interface ConfigIssue {
  file: string;
  path: string;
  message: string;
  line?: number;
}

/** Every problem found in a configuration file at once, each with file, key path and fix. */
export class ConfigError extends UserError {
  constructor(readonly issues: ConfigIssue[]) {
    super('E_CONFIG', formatConfigIssues(issues), 'fix the keys listed above; see README.md "Configuration"');
    this.name = 'ConfigError';
  }
}

export function formatConfigIssues(issues: ConfigIssue[]): string {
  const lines = issues.map((i) => {
    const where = i.line === undefined ? i.file : `${i.file}:${i.line}`;
    return `${where}: ${i.path || '(top level)'}: ${i.message}`;
  });
  return `${issues.length} configuration problem${issues.length === 1 ? '' : 's'}:\n  ${lines.join('\n  ')}`;
}

/** A child process that failed: which command, its exit code and the tail of its output. */
export class ProcessError extends Error {
  constructor(
    readonly argv: string[],
    readonly exitCode: number | undefined,
    readonly outputTail: string[],
    readonly signal?: string,
  ) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
    super(`${argv[0]} ${how}`);
    this.name = 'ProcessError';
  }
}

/** The build was interrupted by a signal (Ctrl-C, SIGTERM). */
export class InterruptedError extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'InterruptedError';
  }
}

/** Wrap an error with what was being done ("converting disk: ..."), keeping its kind. */
export function withContext(what: string, err: unknown): Error {
  if (err instanceof InterruptedError) return err;
  if (err instanceof UserError) {
    const e = new UserError(err.code, `${what}: ${err.message}`, err.hint);
    return e;
  }
  if (err instanceof ProcessError) {
    const e = new ProcessError(err.argv, err.exitCode, err.outputTail, err.signal);
    e.message = `${what}: ${err.message}`;
    return e;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  e.message = `${what}: ${e.message}`;
  return e;
}

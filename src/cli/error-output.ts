/** How errors are shown: the code on the first line; the machine's errno errors as user errors. */
import { type ProcessError, UserError } from '../errors.js';

/** The message with its error code at the end of its first line: "what went wrong [E_CODE]". */
export function withCode(message: string, code: string): string {
  const nl = message.indexOf('\n');
  return nl < 0 ? `${message} [${code}]` : `${message.slice(0, nl)} [${code}]${message.slice(nl)}`;
}

/** Errors of the user's machine (permissions, space, a file in the way) that reached the top: user errors. */
const ENVIRONMENT_ERRNOS: Record<string, string> = {
  EACCES: 'check the permissions of that path (osbake runs as the user who started it)',
  EPERM: 'this needs privileges the user lacks (run as root where osbake says so)',
  EROFS: 'the file system is read-only: use a writable directory',
  ENOSPC: 'the disk is full: free space or point workDir/store elsewhere',
  EDQUOT: 'the disk quota is exhausted: free space or point workDir/store elsewhere',
  EISDIR: 'a directory is where a file belongs: remove or rename it',
  ENOTDIR: 'a file is where a directory belongs: remove or rename it',
  EMFILE: 'too many open files: raise the limit (ulimit -n)',
  ELOCKED: 'another osbake process holds this lock: wait for it, or check that it is still running',
};

export function environmentError(err: unknown): UserError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || !Object.hasOwn(ENVIRONMENT_ERRNOS, code)) return undefined;
  const e = err as NodeJS.ErrnoException;
  return new UserError(`E_${code}`, e.message, ENVIRONMENT_ERRNOS[code]);
}

/** A child tool's failure in one line: what failed and the tool's own last line (pure). */
export function processErrorLine(err: ProcessError): string {
  const last = [...err.outputTail].reverse().find((l) => l.trim() !== '');
  const said = last ? `: ${last.trim().slice(0, 300)}` : '';
  return `${err.message.split('\n')[0]}${said}`;
}

/** A command line to show: arguments with spaces quoted, at most 400 characters (pure). */
export function commandLine(argv: readonly string[]): string {
  const text = argv.map((a) => (/^[\w./:=@%+,-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
  return text.length > 400 ? `${text.slice(0, 399)}…` : text;
}

export const TOOL_HINT =
  'a tool osbake ran failed: its last lines are above, its whole output is in the log (out/); rerun with --debug to step through';

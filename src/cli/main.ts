/** osbake command line: the only place that calls process.exit. */
import { accessSync, constants, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Command, CommanderError } from 'commander';
import { ConfigError, InterruptedError, ProcessError, ReportedError, UserError } from '../errors.js';
import { installSignalHandlers, interruptedBy } from '../exec/signals.js';
import { OSBAKE_VERSION } from '../version.js';
import { registerBuild } from './commands/build.js';
import { registerBurn } from './commands/burn.js';
import { registerClean } from './commands/clean.js';
import { registerDiff } from './commands/diff.js';
import { registerImages } from './commands/images.js';
import { registerKeys } from './commands/keys.js';
import { registerManifest } from './commands/manifest.js';
import { registerNetboot } from './commands/netboot.js';
import { registerPackages } from './commands/packages.js';
import { registerPublish } from './commands/publish.js';
import { registerRebuild } from './commands/rebuild.js';
import { registerRelease } from './commands/release.js';
import { registerServe } from './commands/serve.js';
import { registerTest } from './commands/test.js';
import { registerValidate } from './commands/validate.js';
import { registerVerify } from './commands/verify.js';

import { commandLine, environmentError, processErrorLine, TOOL_HINT, withCode } from './error-output.js';
import type { GlobalOptions } from './options.js';

function printError(err: unknown, debug: boolean): number {
  const out = process.stderr;
  const env = environmentError(err);
  if (env && !(err instanceof UserError)) return printError(env, debug);
  if (err instanceof ReportedError) return err.exitCode;
  if (err instanceof InterruptedError) {
    out.write(`osbake: ${err.message}; cleaned up\n`);
    return 130;
  }
  // Whatever a verb threw after a signal (a child it stopped, a wrapped abort) is the interruption.
  const by = interruptedBy();
  if (by) {
    out.write(`osbake: interrupted by ${by}; cleaned up\n`);
    if (debug) out.write(`(then: ${err instanceof Error ? err.message : String(err)})\n`);
    return 130;
  }
  if (err instanceof ConfigError) {
    out.write(`osbake: error: ${withCode(err.message, err.code)}\n`);
    if (err.hint) out.write(`hint: ${err.hint}\n`);
    return 2;
  }
  if (err instanceof UserError) {
    out.write(`osbake: error: ${withCode(err.message, err.code)}\n`);
    if (err.hint) out.write(`hint: ${err.hint}\n`);
    if (debug && err.stack) out.write(`${err.stack}\n`);
    return 1;
  }
  if (err instanceof ProcessError) {
    out.write(`osbake: error: ${withCode(processErrorLine(err), 'E_TOOL')}\n`);
    out.write(`  command: ${commandLine(err.argv)}\n`);
    if (err.outputTail.length > 1) out.write(`${err.outputTail.map((l) => `  | ${l}`).join('\n')}\n`);
    out.write(`hint: ${TOOL_HINT}\n`);
    if (debug && err.stack) out.write(`${err.stack}\n`);
    return 1;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  out.write(`osbake: internal error: ${e.message}\n`);
  out.write(
    debug ? `${e.stack}\n` : 'hint: this is a bug; rerun with --debug for a stack trace and report it\n',
  );
  return 70;
}

export function createProgram(): Command {
  const program = new Command();
  program
    .name('osbake')
    .description('Build, patch, release, install and serve cluster OS images')
    .version(OSBAKE_VERSION)
    .option(
      '-C, --project <dir>',
      'project directory (where osbake.yaml is); default: search upward from cwd',
    )
    .option('--debug', 'step through builds, echo commands, show stack traces')
    .showHelpAfterError('(osbake --help lists the commands)')
    .exitOverride();
  registerBuild(program);
  registerBurn(program);
  registerImages(program);
  registerRelease(program);
  registerVerify(program);
  registerRebuild(program);
  registerTest(program);
  registerValidate(program);
  registerClean(program);
  registerManifest(program);
  registerPackages(program);
  registerDiff(program);
  registerServe(program);
  registerPublish(program);
  registerKeys(program);
  registerNetboot(program);
  return program;
}

/** TMPDIR (os.tmpdir()) must be a writable directory: every verb makes scratch directories there. */
function checkTmpdir(): void {
  const dir = tmpdir();
  try {
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new UserError(
      'E_TMPDIR',
      `the temporary directory ${dir} is not usable (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      'set TMPDIR to a writable directory, or unset it',
    );
  }
}

async function main(): Promise<number> {
  installSignalHandlers();
  const program = createProgram();
  try {
    checkTmpdir();
    await program.parseAsync(process.argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    return printError(err, Boolean(program.opts<GlobalOptions>().debug));
  }
}

// A terminal that goes away (ssh dropped, parent killed) must not crash a build before its
// cleanup runs: writes to a closed stdout/stderr (EPIPE) are dropped; the log file keeps everything.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => process.exit(printError(err, true)),
);

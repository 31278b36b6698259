import type { Command } from 'commander';
import type { GlobalOptions } from '../options.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'serve the artifact store read-only over HTTP: files (ranges, ETag, .sha256), listings, ' +
        'the releases page at / and the JSON API at /api/releases and /api/builds',
    )
    .option('--root <dir>', 'directory to serve (default: the project store from osbake.yaml)')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: any free port)', '8080')
    .option(
      '--engine <name>',
      'who sends the files: nginx (in front, sendfile), node (osbake alone), auto: nginx if installed',
      'auto',
    )
    .option(
      '--workers <n>',
      'worker processes sharing the port: auto (one per core, at most 8) or a number; 1: no workers',
      'auto',
    )
    .option(
      '--netboot [release]',
      'also serve release R (default: the newest with an installer) to nodes booting from the network: /netboot/boot.ipxe, /api/netboot',
    )
    .addHelpText(
      'after',
      [
        '',
        'Release and build data come from the project (manifest.yaml, images/*/manifest.json) when the',
        'served directory is the project store; from store/releases/*.json and store/builds/ otherwise.',
        'Ctrl-C or SIGTERM stops it gracefully: downloads in flight get 10 s to finish. Each worker',
        'is a process of its own (like nginx worker_processes); a worker that dies is replaced.',
        'With nginx installed (--engine auto), nginx sends the files (sendfile, ranges, ETag) and',
        'osbake answers the rest behind it: the page, the API, listings, computed .sha256, symlinks,',
        'and every path or method nginx is not sure about.',
        '',
        'Examples:',
        '  osbake serve',
        '  osbake serve --host 0.0.0.0 --port 8080',
        '  osbake serve --root /srv/osbake-mirror --port 9000',
        '  osbake serve --host 0.0.0.0 --netboot          nodes boot http://THIS-HOST:8080/netboot/boot.ipxe',
        '  osbake serve --host 0.0.0.0 --netboot 2026.11  a named release',
      ].join('\n'),
    )
    .action(
      async (opts: {
        root?: string;
        host: string;
        port: string;
        workers: string;
        engine: string;
        netboot?: string | boolean;
      }) => {
        const g = program.opts<GlobalOptions>();
        const { runServe } = await import('../../serve/run-serve.js');
        await runServe({
          projectDir: g.project ?? process.cwd(),
          explicitProject: g.project !== undefined,
          ...opts,
        });
      },
    );
}

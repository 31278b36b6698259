/**
 * Folders of src/ import downward only (DESIGN.md): each layer may import the layers below it and
 * nothing above or beside it, so the folder graph cannot have a cycle. Checked in CI:
 * `npm run lint` runs `depcruise src`. Add a folder to a layer here when you create it.
 */
const LAYERS = [
  ['errors.ts', 'version.ts'],
  ['fsx'],
  ['log'],
  ['exec'],
  ['config'],
  ['artifacts', 'git', 'signing', 'disk'],
  ['media', 'patches'],
  ['distros'],
  ['release'],
  ['installer'],
  ['builders'],
  ['netboot'],
  ['publish', 'serve'],
  ['pipeline'],
  ['cli'],
];

const path = (name) => (name.endsWith('.ts') ? `^src/${name.replace('.', '\\.')}$` : `^src/${name}/`);

const forbidden = [
  {
    name: 'no-circular',
    comment: 'no module cycle, inside a folder either',
    severity: 'error',
    from: {},
    to: { circular: true },
  },
  {
    name: 'not-to-unresolvable',
    comment: 'every import resolves (a moved file must not leave a dangling import behind)',
    severity: 'error',
    from: {},
    to: { couldNotResolve: true },
  },
  {
    name: 'no-orphans',
    comment: 'every module of src/ is imported by another or is an entry point (cli/main.ts)',
    severity: 'error',
    from: { orphan: true, path: '^src/', pathNot: ['^src/cli/main\\.ts$', '\\.test\\.ts$', '\\.d\\.ts$'] },
    to: {},
  },
  {
    name: 'src-in-a-layer',
    comment: 'every file of src/ belongs to a layer of .dependency-cruiser.cjs',
    severity: 'error',
    from: { path: '^src/', pathNot: LAYERS.flat().map(path) },
    to: {},
  },
];
LAYERS.forEach((layer, i) => {
  for (const name of layer) {
    const notBelow = LAYERS.slice(i)
      .flat()
      .filter((n) => n !== name);
    if (notBelow.length === 0) continue;
    forbidden.push({
      name: `layer-${name}`,
      comment: `src/${name} may import only: ${LAYERS.slice(0, i).flat().join(', ') || 'nothing of src'} (and itself)`,
      severity: 'error',
      from: { path: path(name), pathNot: '\\.test\\.ts$' },
      to: { path: notBelow.map(path) },
    });
  }
});

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.test\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};

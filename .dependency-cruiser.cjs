/**
 * The dependency direction of design.md: the core libraries never reach up into the
 * run path or the user interfaces, and nothing imports in a circle.
 */
module.exports = {
  forbidden: [
    {
      name: 'core-libraries-stay-below-the-run-path',
      comment:
        'hardware/, zoo/, plan/, sim/ and ckpt/ must not import control/, agent/, cli/, backends/ or web/.',
      severity: 'error',
      from: { path: '^src/(hardware|zoo|plan|sim|ckpt)/' },
      to: { path: '^(src/(control|agent|cli|backends)|web)/' },
    },
    {
      name: 'hardware-and-zoo-are-leaves',
      comment: 'hardware/ and zoo/ sit at the bottom: they use only core/ and each other.',
      severity: 'error',
      from: { path: '^src/(hardware|zoo)/' },
      to: { path: '^src/(plan|sim|ckpt)/' },
    },
    {
      name: 'ckpt-stands-alone',
      comment: 'ckpt/ uses only core/.',
      severity: 'error',
      from: { path: '^src/ckpt/' },
      to: { path: '^src/(hardware|zoo|plan|sim)/' },
    },
    {
      name: 'agent-and-control-are-peers',
      comment:
        'The node agent and the control plane talk only over HTTP (docs/control-protocol.md): neither imports the other, and neither imports the CLI.',
      severity: 'error',
      from: { path: '^src/(agent|backends)/' },
      to: { path: '^src/(control|cli)/' },
    },
    {
      name: 'control-does-not-import-agent-or-cli',
      severity: 'error',
      from: { path: '^src/control/' },
      to: { path: '^src/(agent|backends|cli)/' },
    },
    {
      name: 'core-imports-nothing-of-cube',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/(?!core/)' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};

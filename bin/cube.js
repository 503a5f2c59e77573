#!/usr/bin/env node
// The published entry point. It runs the compiled CLI in dist/ (`npm run build`, which
// scripts/setup.sh runs) when that build is as new as src/, and otherwise the TypeScript
// sources through tsx, saying so on stderr: it never runs a stale build (docs/cli.md, "Speed:
// compiled CLI").
//
// CUBE_CLI_FROM picks without looking: `dist` runs dist/ (no freshness check: a process Cube
// spawns from a compiled CLI runs the same build as its parent), `src` runs the sources with no
// warning (development). Whichever runs, CUBE_CLI_FROM is set to it for the processes it starts.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { staleness } from './dist-freshness.js';

const root = fileURLToPath(new URL('..', import.meta.url));

let from = process.env.CUBE_CLI_FROM;
// A parent's build replaced under it (a rebuild's renames): the child checks for itself.
if (from === 'dist' && !existsSync(join(root, 'dist', 'cli', 'main.js'))) from = undefined;
if (from !== 'dist' && from !== 'src') {
  const stale = staleness(root);
  if (stale === null) from = 'dist';
  else {
    from = 'src';
    process.stderr.write(
      `cube: warning: ${stale}; running the sources with tsx (slower); \`npm run build\` compiles them\n`,
    );
  }
}
process.env.CUBE_CLI_FROM = from;

let main;
if (from === 'dist') ({ main } = await import('../dist/cli/main.js'));
else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));

// Builds dist/: the CLI and everything it runs, compiled from src/ to ESM JavaScript, so
// `npx cube` does not compile TypeScript on every call (docs/cli.md, "Speed: compiled CLI").
//
// The build goes to a temporary folder beside dist/ and replaces dist/ by renames, so a
// concurrent `cube` never runs half a build: it sees the old dist/, the new one, or none (and
// then runs the sources). dist/.build-stamp.json, written last, records the newest source
// modification time and the number of source files as they were *before* compiling: a source
// changed while tsc ran is newer than the stamp, so bin/cube.js treats the build as stale.
//
// Type errors do not stop the build (`--noCheck`, safe under `isolatedModules`): `npm run
// typecheck` is the type gate, and a build half the time of a checked one keeps setup short.
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceFiles, staleness, stampFile } from '../bin/dist-freshness.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const dist = join(root, 'dist');
const next = join(root, `dist.tmp-${process.pid}`);
const old = join(root, `dist.old-${process.pid}`);

// `--check` (scripts/setup.sh): exit 0 when dist/ is as new as src/, else 1 saying why.
if (process.argv.includes('--check')) {
  const stale = staleness(root);
  if (stale !== null) console.error(`build: ${stale}`);
  process.exit(stale === null ? 0 : 1);
}

const started = Date.now();
const files = sourceFiles(src);
const newestMtimeMs = Math.max(...files.map((f) => statSync(f).mtimeMs));

rmSync(next, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const compiled = spawnSync(
  process.execPath,
  [tsc, '-p', join(root, 'tsconfig.build.json'), '--noCheck', '--outDir', next],
  { cwd: root, stdio: 'inherit' },
);
if (compiled.status !== 0) {
  rmSync(next, { recursive: true, force: true });
  console.error(`build: tsc failed (exit ${compiled.status ?? compiled.signal}); dist/ unchanged`);
  process.exit(1);
}

// What the code reads at run time beside itself (src/zoo/data/models.json, read relative to
// import.meta.url) goes where the compiled module will look for it.
for (const file of files) {
  if (file.endsWith('.ts') || file.endsWith('.mjs')) continue;
  const to = join(next, relative(src, file));
  mkdirSync(dirname(to), { recursive: true });
  cpSync(file, to);
}
writeFileSync(
  join(next, stampFile),
  `${JSON.stringify({ newestSourceMtimeMs: newestMtimeMs, sourceFiles: files.length, builtAt: new Date().toISOString() })}\n`,
);

if (existsSync(dist)) renameSync(dist, old);
renameSync(next, dist);
rmSync(old, { recursive: true, force: true });
console.log(
  `build: dist/ from ${files.length} source files in ${((Date.now() - started) / 1000).toFixed(1)} s`,
);

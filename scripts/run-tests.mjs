// Runs every *.test.ts under test/ and src/ with node's test runner. Node 20 does not
// expand globs for `--test`, so the files are found here and passed explicitly.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;

function findTests(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith('.test.ts')) found.push(relative(root, path));
  }
  return found;
}

// `--fuzz` (npm run fuzz): the property tests under test/fuzz/ run CUBE_FUZZ_RUNS cases each
// (20000 unless set) with a fresh seed. Without it they run their small fixed count with a
// fixed seed, whatever the environment says, so `npm test` stays short and reproducible.
const args = process.argv.slice(2);
const fuzz = args.includes('--fuzz');
const filter = args.filter((a) => a !== '--fuzz');
const env = { ...process.env };
if (fuzz) env.CUBE_FUZZ_RUNS = env.CUBE_FUZZ_RUNS || '20000';
else {
  delete env.CUBE_FUZZ_RUNS;
  delete env.CUBE_FUZZ_SEED;
}
const files = ['test', 'src']
  .flatMap((dir) => {
    try {
      return findTests(join(root, dir));
    } catch {
      return [];
    }
  })
  .filter((file) => filter.length === 0 || filter.some((f) => file.includes(f)))
  .sort();

if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
console.log(`run-tests: ${files.length} test files`);
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit', env },
);
process.exit(result.status ?? 1);

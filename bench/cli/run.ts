/**
 * CLI speed (not a test): what a `cube` call costs compiled (dist/, `npm run build`) and through
 * tsx (the sources), against `node -e 0`, the floor any Node CLI pays, measured in the same run.
 * Every command runs in both forms and the baseline alternately, round after round (A B A B), and
 * medians are compared: CPU time (user + system of the child, from /usr/bin/time, which the
 * machine's other load inflates far less than wall time) and wall time. Target (issue 16):
 * `cube hardware --json` at most 3x `node -e 0` in CPU time.
 *
 * Second part: how long an embedded cluster takes to come up with every agent joined (`cube up
 * --nodes 3 --spares 0 --json`, which returns once all have joined; then `cube down`), compiled
 * vs tsx: the agents and the checkpoint daemons they spawn start as the CLI that started them.
 * Target: the compiled cluster joins at least 3x faster.
 *
 * A figure below the physical floor (a `cube` call cheaper in CPU than `node -e 0`) fails the
 * run (exit 1): it would mean the measurement is broken, not that Cube is fast.
 *
 * With `--before DIR` (a checkout of the code before issue 16, e.g. `git worktree add /tmp/before
 * 29cb61f` with `node_modules` and `.venv` linked in), its `cube up` joins the interleaving as a
 * third form: "faster than today" in the issue's sense, where the tsx form above is today's
 * sources already loading lazily.
 *
 *   npm run bench:cli                       # 9 rounds, 3 cluster starts per form
 *   npm run bench:cli -- --runs 7 --join-runs 0
 *   npm run bench:cli -- --runs 3 --join-runs 5 --before /tmp/before
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const time = '/usr/bin/time';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i === -1) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`bench:cli: ${name} takes a whole number, got ${process.argv[i + 1]}`);
    process.exit(2);
  }
  return value;
}

const runs = flag('--runs', 9);
const joinRuns = flag('--join-runs', 3);
const beforeIndex = process.argv.indexOf('--before');
const beforeDir = beforeIndex === -1 ? null : (process.argv[beforeIndex + 1] ?? '');
if (beforeDir !== null && !existsSync(join(beforeDir, 'bin', 'cube.js'))) {
  console.error(`bench:cli: --before ${beforeDir}: no bin/cube.js there (a checkout of Cube)`);
  process.exit(2);
}

interface Sample {
  readonly wallS: number;
  readonly cpuS: number;
}

type From = 'dist' | 'src' | 'before';

/** One child under /usr/bin/time: its wall and CPU (user + system) seconds. */
function measure(args: readonly string[], env: NodeJS.ProcessEnv, cwd: string = root): Sample {
  const dir = mkdtempSync(join(tmpdir(), 'cube-bench-cli-'));
  const out = join(dir, 'time');
  try {
    const r = spawnSync(time, ['-f', '%e %U %S', '-o', out, process.execPath, ...args], {
      cwd,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0)
      throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr.toString().slice(-2000)}`);
    const [wall, user, sys] = readFileSync(out, 'utf8').trim().split('\n').at(-1)!.split(' ');
    return { wallS: Number(wall), cpuS: Number(user) + Number(sys) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function envFor(from: From): NodeJS.ProcessEnv {
  return from === 'before' ? { ...process.env } : { ...process.env, CUBE_CLI_FROM: from };
}

if (!existsSync(time)) {
  console.error(`bench:cli: ${time} is missing (Debian package \`time\`); it measures child CPU`);
  process.exit(2);
}
// The compiled form must be the current sources, or the comparison means nothing.
if (spawnSync(process.execPath, ['scripts/build.mjs', '--check'], { cwd: root }).status !== 0) {
  console.log('bench:cli: dist/ is stale; building it');
  const built = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' });
  if (built.status !== 0) process.exit(1);
}

const commands: readonly (readonly string[])[] = [
  ['--version'],
  ['hardware', '--json'],
  ['zoo', '--json'],
  [
    'plan',
    '--model',
    'llama-3.1-8b',
    '--accelerator',
    'h100-sxm',
    '--gpus',
    '8',
    '--tp',
    '1',
    '--pp',
    '1',
    '--json',
  ],
];

const load = { before: loadavg(), after: [0, 0, 0] };
console.log(
  `machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, load average ${load.before.map((l) => l.toFixed(2)).join(' ')}`,
);
console.log(`${runs} rounds; each round runs node -e 0 and every command compiled and via tsx`);

const baseline: Sample[] = [];
const samples = new Map<string, Sample[]>();
const key = (args: readonly string[], from: From): string => `${from}\0${args.join(' ')}`;
for (let round = 0; round < runs; round += 1) {
  baseline.push(measure(['-e', '0'], process.env));
  for (const args of commands) {
    // Alternate which form goes first, so neither always runs on a warmer cache.
    const order: From[] = round % 2 === 0 ? ['dist', 'src'] : ['src', 'dist'];
    for (const from of order) {
      const k = key(args, from);
      samples.set(k, [...(samples.get(k) ?? []), measure(['bin/cube.js', ...args], envFor(from))]);
    }
  }
  if (process.stdout.isTTY) process.stdout.write(`  round ${round + 1}/${runs} done\r`);
}
if (process.stdout.isTTY) process.stdout.write('\n');

const floor = {
  cpuS: median(baseline.map((s) => s.cpuS)),
  wallS: median(baseline.map((s) => s.wallS)),
};
let belowFloor = false;
let targetMissed = false;
const rows: string[][] = [
  ['command', 'form', 'CPU s', 'x node -e 0', 'wall s', 'x node -e 0', 'target'],
  ['node -e 0', '', floor.cpuS.toFixed(3), '1.00', floor.wallS.toFixed(3), '1.00', ''],
];
for (const args of commands) {
  for (const from of ['dist', 'src'] as const) {
    const s = samples.get(key(args, from)) ?? [];
    const cpu = median(s.map((x) => x.cpuS));
    const wall = median(s.map((x) => x.wallS));
    if (cpu < floor.cpuS) belowFloor = true;
    const isTarget = from === 'dist' && args.join(' ') === 'hardware --json';
    const ratio = cpu / floor.cpuS;
    if (isTarget && ratio > 3) targetMissed = true;
    rows.push([
      `cube ${args.join(' ').replace(/ --accelerator.*--json$/, ' ... --json')}`,
      from === 'dist' ? 'compiled' : 'tsx',
      cpu.toFixed(3),
      ratio.toFixed(2),
      wall.toFixed(3),
      (wall / floor.wallS).toFixed(2),
      isTarget ? `<= 3.00: ${ratio <= 3 ? 'PASS' : 'MISS'}` : '',
    ]);
  }
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));

if (joinRuns > 0) {
  console.log(
    `\ncluster join: cube up --nodes 3 --spares 0 --json (returns once every agent joined), ${joinRuns} per form, alternating`,
  );
  const joins: Record<From, number[]> = { dist: [], src: [], before: [] };
  const forms: From[] = beforeDir === null ? ['dist', 'src'] : ['dist', 'src', 'before'];
  const label: Record<From, string> = { dist: 'compiled', src: 'tsx     ', before: 'before  ' };
  for (let round = 0; round < joinRuns; round += 1) {
    const order = round % 2 === 0 ? forms : [...forms].reverse();
    for (const from of order) {
      const dir = mkdtempSync(join(tmpdir(), 'cube-bench-join-'));
      const cwd = from === 'before' && beforeDir !== null ? beforeDir : root;
      // Its own config and state folders (and home, for code older than CUBE_CONFIG_DIR): the
      // run must not replace the user's `cube login`.
      const env = {
        ...envFor(from),
        HOME: join(dir, 'home'),
        CUBE_CONFIG_DIR: join(dir, 'config'),
        CUBE_STATE_DIR: join(dir, 'state'),
      };
      const dataDir = join(dir, 'cluster');
      try {
        const s = measure(
          [
            'bin/cube.js',
            'up',
            '--nodes',
            '3',
            '--spares',
            '0',
            '--port',
            '0',
            '--data-dir',
            dataDir,
            '--json',
          ],
          env,
          cwd,
        );
        joins[from].push(s.wallS);
        console.log(`  ${label[from]} ${s.wallS.toFixed(1)} s`);
      } finally {
        spawnSync(process.execPath, ['bin/cube.js', 'down', '--data-dir', dataDir], {
          cwd,
          env,
          stdio: 'ignore',
        });
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const compiled = median(joins.dist);
  const tsx = median(joins.src);
  const speedup = tsx / compiled;
  // The target is "faster than today": the code before issue 16 when --before names it, else
  // today's sources through tsx (which already load lazily, so a stricter baseline).
  const judged = beforeDir === null ? 'tsx' : 'before';
  const verdict = (x: number): string => (x >= 3 ? 'PASS' : 'MISS');
  console.log(
    `median: compiled ${compiled.toFixed(1)} s, tsx ${tsx.toFixed(1)} s: ${speedup.toFixed(2)}x faster compiled${judged === 'tsx' ? ` (target >= 3.00: ${verdict(speedup)})` : ''}`,
  );
  if (judged === 'tsx' && speedup < 3) targetMissed = true;
  if (beforeDir !== null) {
    const before = median(joins.before);
    const gain = before / compiled;
    if (gain < 3) targetMissed = true;
    console.log(
      `median: before issue 16 (${beforeDir}) ${before.toFixed(1)} s: compiled ${gain.toFixed(2)}x faster (target >= 3.00: ${verdict(gain)})`,
    );
  }
}

load.after = loadavg();
console.log(`\nload average after: ${load.after.map((l) => l.toFixed(2)).join(' ')}`);
if (belowFloor) {
  console.error(
    'bench:cli: a cube call measured less CPU than `node -e 0`, its physical floor: the measurement is broken',
  );
  process.exit(1);
}
if (targetMissed) console.log('bench:cli: a target was missed (see MISS above)');

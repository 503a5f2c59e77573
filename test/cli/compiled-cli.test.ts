import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

// The compiled CLI is built into a copy of the checkout, so the test neither depends on nor
// disturbs the checkout's own dist/ (which other work may be rebuilding), and can make its
// sources newer than its build without touching the real ones.
const root = new URL('../../', import.meta.url).pathname;
const copy = mkdtempSync(join(tmpdir(), 'cube-compiled-'));
const marker = 'COMPILED-BUILD-MARKER';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
  timeoutMs = 120_000,
): Promise<Run> {
  return new Promise((resolve) => {
    // CUBE_CLI_FROM is removed unless given, so that bin/cube.js decides for itself.
    const inherited = { ...process.env };
    delete inherited.CUBE_CLI_FROM;
    execFile(
      process.execPath,
      [...args],
      {
        cwd: copy,
        env: { ...inherited, ...env },
        maxBuffer: 64 * 1024 * 1024,
        timeout: timeoutMs,
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const cube = (args: readonly string[], env: Readonly<Record<string, string>> = {}) =>
  run(['bin/cube.js', ...args], env);

before(async () => {
  for (const path of ['bin', 'src', 'scripts', 'tsconfig.json', 'tsconfig.build.json'])
    cpSync(join(root, path), join(copy, path), { recursive: true, preserveTimestamps: true });
  writeFileSync(join(copy, 'package.json'), readFileSync(join(root, 'package.json')));
  // What the CLI reads but does not build: the packages, the Python side and the dashboard.
  for (const path of ['node_modules', 'python', 'web', '.venv'])
    if (existsSync(join(root, path))) symlinkSync(join(root, path), join(copy, path));
  const built = await run(['scripts/build.mjs'], {}, 600_000);
  assert.equal(built.code, 0, built.stderr);
  // A change only the build has: whichever prints it ran dist/, not the sources.
  const hardware = join(copy, 'dist', 'cli', 'commands', 'hardware.js');
  writeFileSync(
    hardware,
    readFileSync(hardware, 'utf8').replace('the accelerator catalog', `${marker} catalog`),
  );
});
after(() => rmSync(copy, { recursive: true, force: true }));

describe('the compiled CLI', () => {
  test('a fresh build runs from dist/ and prints the same catalog and zoo as the sources', async () => {
    const help = await cube(['hardware', '--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, new RegExp(marker));
    assert.equal(help.stderr, '', 'a fresh build runs without a warning');

    for (const args of [
      ['hardware', '--json'],
      ['zoo', '--json'],
    ]) {
      const [compiled, sources] = await Promise.all([
        cube(args),
        cube(args, { CUBE_CLI_FROM: 'src' }),
      ]);
      assert.equal(compiled.code, 0, compiled.stderr);
      assert.equal(sources.code, 0, sources.stderr);
      assert.equal(compiled.stderr, '');
      assert.ok(compiled.stdout.length > 1000, args.join(' '));
      assert.equal(compiled.stdout, sources.stdout, `${args.join(' ')}: dist and src differ`);
    }
  });

  test('a misspelt command still gets its suggestion, and help lists every command', async () => {
    const typo = await cube(['hardwre']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /unknown command 'hardwre'/);
    assert.match(typo.stderr, /hardware/);
    const help = await cube(['--help']);
    assert.equal(help.code, 0, help.stderr);
    for (const name of ['hardware', 'zoo', 'plan', 'simulate', 'ckpt', 'agent', 'up', 'submit'])
      assert.match(help.stdout, new RegExp(`^  ${name}\\b`, 'm'), name);
  });

  test('the planner runs in its worker thread from dist/ (no tsx loader there)', async () => {
    const script = `
      import { ComputeWorker } from './dist/control/server/compute-pool.js';
      const worker = new ComputeWorker();
      const result = await worker.plan(
        { model: 'llama-3.1-8b', accelerator: 'h100-sxm', gpus: 8, pins: { tp: 1, pp: 1 }, top: 1 },
        { timeoutMs: 110_000 },
      );
      await worker.close();
      console.log(JSON.stringify(result.plans[0]));`;
    // A file, not `-e`: a worker inherits the parent's execArgv, and `--input-type` fails there.
    writeFileSync(join(copy, 'plan-in-worker.mjs'), script);
    const r = await run(['plan-in-worker.mjs']);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as { tp: number; pp: number; dp: number };
    assert.deepEqual([plan.tp, plan.pp, plan.dp], [1, 1, 8]);
  });

  test('an agent and its checkpoint daemon started from dist/ run dist/ and join', async () => {
    const state = join(copy, 'state');
    mkdirSync(state);
    const env = { CUBE_CONFIG_DIR: join(state, 'config'), CUBE_STATE_DIR: join(state, 'up') };
    const dataDir = join(state, 'cluster');
    const up = await cube(
      ['up', '--nodes', '1', '--spares', '0', '--port', '0', '--data-dir', dataDir, '--json'],
      env,
    );
    try {
      assert.equal(up.code, 0, up.stderr);
      const { agents, serverPid } = JSON.parse(up.stdout) as {
        agents: { pid: number }[];
        serverPid: number;
      };
      for (const pid of [serverPid, agents[0]?.pid ?? -1]) {
        const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
        assert.ok(environ.includes('CUBE_CLI_FROM=dist'), `process ${pid} runs dist/`);
      }
      const log = readFileSync(join(dataDir, 'nodes', 'node-0', 'agent.log'), 'utf8');
      assert.match(log, /checkpoint daemon started/);
      assert.doesNotMatch(log, /running the sources with tsx/);
    } finally {
      const down = await cube(['down', '--data-dir', dataDir], env);
      assert.equal(down.code, 0, down.stderr);
    }
  });

  test('a source newer than the build is not run stale: the sources run, with a warning', async () => {
    const source = join(copy, 'src', 'core', 'cube-error.ts');
    const later = new Date(Date.now() + 5_000);
    utimesSync(source, later, later);
    const [stale, sources] = await Promise.all([
      cube(['hardware', '--json']),
      cube(['hardware', '--json'], { CUBE_CLI_FROM: 'src' }),
    ]);
    assert.equal(stale.code, 0, stale.stderr);
    assert.match(
      stale.stderr,
      /^cube: warning: src\/core\/cube-error\.ts changed after the build in dist\/; running the sources with tsx .*`npm run build`/,
    );
    assert.equal(stale.stderr.trim().split('\n').length, 1, 'one line');
    assert.equal(stale.stdout, sources.stdout);
    const help = await cube(['hardware', '--help']);
    assert.doesNotMatch(help.stdout, new RegExp(marker), 'the stale build did not run');

    const check = await run(['scripts/build.mjs', '--check']);
    assert.equal(check.code, 1);
    assert.match(check.stderr, /cube-error\.ts changed after the build/);
  });

  test('a source removed after the build (its count differs) also makes the build stale', async () => {
    const rebuilt = await run(['scripts/build.mjs'], {}, 600_000);
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    assert.equal((await run(['scripts/build.mjs', '--check'])).code, 0);
    const extra = join(copy, 'src', 'core', 'unused-extra.ts');
    writeFileSync(extra, 'export const unused = 1;\n');
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(extra, old, old);
    const r = await cube(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /src\/ has \d+ files, the build in dist\/ was made from \d+/);
  });

  test('with no build at all (a fresh clone before setup) the sources run, with a warning', async () => {
    rmSync(join(copy, 'dist'), { recursive: true, force: true });
    const r = await cube(['hardware', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^cube: warning: there is no build in dist\/; running the sources/);
    assert.ok((JSON.parse(r.stdout) as unknown[]).length > 10);
  });
});

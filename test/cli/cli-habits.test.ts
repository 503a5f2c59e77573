// The CLI habits users bring from kubectl, Slurm and tail (issue 16): -o formats, filters,
// --watch, logs --tail, job names for ids with suggestions, srun-like exit codes, `cube down`
// finding its cluster, shell completion and examples in --help. Through the real CLI
// (`main(argv)` in this process; `bin/cube.js` for --watch, `up` and `down`) against a real
// control plane on loopback whose one node is driven by hand over the agent API.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { main } from '../../src/cli/main.ts';
import { agentApi, cliOn, heartbeatLoop } from '../support/api-calls.ts';

const cubeBin = fileURLToPath(new URL('../../bin/cube.js', import.meta.url));

let dataDir: string;
let cp: ControlPlane;
const agentCall = agentApi(() => cp);
const cube = cliOn(() => cp);
let node: { nodeId: string; credential: string };
let heartbeats: NodeJS.Timeout;
const commands: { kind: string; jobId?: string; attempt?: number }[] = [];

/** `cube <argv>` with no server flags (completion, help). */
async function cubeBare(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, {
    out: (t) => (out += t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => (err += t.endsWith('\n') ? t : `${t}\n`),
  });
  return { code, out, err };
}

/** The environment of a spawned `cube`: the sources (not a possibly stale build), no login. */
function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CUBE_CLI_FROM: 'src',
    CUBE_CONFIG_DIR: join(dataDir, 'config'),
    ...extra,
  };
}

function specFile(name: string, ranks = 1): string {
  const path = join(dataDir, `${name}-${ranks}.yaml`);
  writeFileSync(
    path,
    [
      `name: ${name}`,
      "command: ['/bin/true']",
      `ranks: { nodes: 1, devicesPerNode: ${ranks} }`,
      'deviceType: cpu',
      'restart: { maxRestarts: 0 }',
      '',
    ].join('\n'),
  );
  return path;
}

async function until<T>(what: string, probe: () => Promise<T | null> | T | null): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Submits a spec through the CLI; returns the job id. */
async function submit(name: string, ranks = 1): Promise<string> {
  const r = await cube('submit', specFile(name, ranks), '--json');
  assert.equal(r.code, 0, r.err);
  return (JSON.parse(r.out) as { id: string }).id;
}

/**
 * Plays the agent's part for the launch of `jobId`: each rank writes `text` to its log and
 * exits with `exitCodes[rank]` (or is killed by `signal`).
 */
async function runRanks(
  jobId: string,
  exitCodes: readonly (number | null)[],
  options: { text?: string; signal?: string } = {},
): Promise<void> {
  const launch = await until(
    `the launch of ${jobId}`,
    () => commands.find((c) => c.kind === 'launch' && c.jobId === jobId) ?? null,
  );
  const attempt = launch.attempt ?? 0;
  for (const [rank] of exitCodes.entries())
    await agentCall(
      `${node.nodeId}/logs`,
      { jobId, attempt, rank, stream: 'stdout', text: options.text ?? `hello from rank ${rank}\n` },
      node.credential,
    );
  await agentCall(
    `${node.nodeId}/events`,
    {
      events: exitCodes.map((exitCode, rank) => ({
        kind: 'rank-exited',
        jobId,
        attempt,
        rank,
        exitCode,
        signal: options.signal ?? null,
      })),
    },
    node.credential,
  );
}

async function jobState(id: string): Promise<string | null> {
  return (await cp.store.getJob(id))?.state ?? null;
}

/** A failed rank cordons the node (a fault as far as the control plane knows): undo it. */
async function uncordon(): Promise<void> {
  await until('the node to be cordoned or ready', async () => {
    const n = (await cp.store.listNodes())[0];
    return n?.state === 'ready' || n?.state === 'cordoned' ? true : null;
  });
  await cube('uncordon', 'hand-0');
}

/** A spawned `cube` whose stdout lines are collected as they come. */
function spawnCube(...argv: string[]): { child: ChildProcess; lines: string[]; err: () => string } {
  const child = spawn(
    process.execPath,
    [cubeBin, ...argv, '--server', cp.url, '--token', cp.tokens.apiToken],
    { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: string[] = [];
  let partial = '';
  let err = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => (err += chunk));
  return { child, lines, err: () => err };
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cube-cli-habits-'));
  cp = await ControlPlane.start({ dataDir: join(dataDir, 'server'), tickMs: 50 });
  node = (await agentCall('join', {
    joinToken: cp.tokens.joinToken,
    name: 'hand-0',
    labels: { server: 's0' },
    devices: [0, 1].map((index) => ({
      index,
      kind: 'cpu',
      model: 'test cpu',
      memoryBytes: 1 << 30,
      health: 'ok',
    })),
    hostMemoryBytes: 1 << 30,
  })) as { nodeId: string; credential: string };
  heartbeats = heartbeatLoop(agentCall, node, commands);
});

after(async () => {
  clearInterval(heartbeats);
  await cp.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('-o prints yaml, name and wide, --json stays an alias of -o json, and a bad -o value is exit 2 naming the allowed ones', async () => {
  const id = await submit('formats');
  await runRanks(id, [0]);
  await until('the job to succeed', async () =>
    (await jobState(id)) === 'succeeded' ? true : null,
  );

  const json = await cube('nodes', '-o', 'json');
  assert.equal(json.code, 0, json.err);
  assert.equal(json.out, (await cube('nodes', '--json')).out, '--json is -o json');
  const yaml = await cube('nodes', '-o', 'yaml');
  assert.deepEqual(parseYaml(yaml.out), JSON.parse(json.out), 'yaml is the same value');
  assert.equal((await cube('nodes', '-o', 'name')).out, 'hand-0\n');
  const wide = await cube('nodes', '-o', 'wide');
  assert.match(wide.out, /^ID\s+NAME\s+STATE.*HEARTBEAT\s+MODEL\s+DEVICE-MEM\s+HOST-MEM/m);
  assert.match(wide.out, /hand-0\s+ready.*test cpu\s+1\.0 GiB/);

  const names = await cube('jobs', '--output', 'name');
  assert.ok(names.out.split('\n').includes(id), names.out);
  assert.match((await cube('jobs', '-o', 'wide')).out, /DEVICE\s+PRIORITY\s+NODES\s+STARTED/);
  const shown = await cube('jobs', 'show', id, '-o', 'yaml');
  assert.equal(shown.code, 0, shown.err);
  const doc = parseYaml(shown.out) as { id: string; state: string; checkpoints: unknown[] };
  assert.deepEqual([doc.id, doc.state, Array.isArray(doc.checkpoints)], [id, 'succeeded', true]);
  assert.equal((await cube('jobs', 'show', id, '-o', 'name')).out, `${id}\n`);
  assert.match((await cube('jobs', 'show', id, '-o', 'wide')).out, /^ {2}created\s+\d{4}-/m);
  const events = await cube('events', id, '-o', 'yaml');
  const kinds = (parseYaml(events.out) as { kind: string }[]).map((e) => e.kind);
  assert.ok(kinds.includes('job-succeeded'), kinds.join());
  const tokens = await cube('token', 'ls', '-o', 'name');
  assert.match(tokens.out, /^tok-/m);
  assert.deepEqual(
    parseYaml((await cube('token', 'ls', '-o', 'yaml')).out),
    JSON.parse((await cube('token', 'ls', '--json')).out),
  );

  const bad = await cube('jobs', '-o', 'xml');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /-o\/--output must be one of table, wide, json, yaml, name, got "xml"/);
  assert.equal(bad.out, '');
  const both = await cube('nodes', '--json', '-o', 'yaml');
  assert.equal(both.code, 2);
  assert.match(both.err, /--json and -o yaml/);
});

test('jobs --state, nodes --state and events --type filter by the real state and event names, and refuse others', async () => {
  const failed = await submit('filter-failed');
  await runRanks(failed, [3]);
  await until('the job to fail', async () => ((await jobState(failed)) === 'failed' ? true : null));
  await uncordon();
  const running = await submit('filter-running');
  await until('the job to be scheduled or running', async () => {
    const s = await jobState(running);
    return s === 'scheduled' || s === 'running' ? true : null;
  });

  const listed = JSON.parse((await cube('jobs', '--state', 'failed', '--json')).out) as {
    id: string;
    state: string;
  }[];
  assert.ok(listed.some((j) => j.id === failed));
  assert.ok(listed.every((j) => j.state === 'failed'));
  const two = await cube('jobs', '--state', 'failed,scheduled,running', '-o', 'name');
  assert.ok(two.out.includes(failed) && two.out.includes(running), `${two.out} ${two.err}`);
  const none = await cube('jobs', '--state', 'recovering', '-o', 'name');
  assert.deepEqual([none.code, none.out], [0, ''], 'an empty list prints nothing');

  const bad = await cube('jobs', '--state', 'runing');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--state: "runing" is not one of queued, scheduled, running, recovering/);
  assert.match(bad.err, /did you mean "running"/);

  assert.equal((await cube('nodes', '--state', 'ready,cordoned', '-o', 'name')).out, 'hand-0\n');
  assert.equal((await cube('nodes', '--state', 'down', '-o', 'name')).out, '');
  assert.equal((await cube('nodes', '--state', 'dead')).code, 2);

  const faults = JSON.parse(
    (await cube('events', failed, '--type', 'rank-exited,job-failed', '--json')).out,
  ) as { kind: string; data: { exitCode?: number } }[];
  assert.deepEqual(
    faults.map((e) => e.kind),
    ['rank-exited', 'job-failed'],
  );
  // Without a job: the cluster's events, filtered the same way.
  assert.equal((await cube('cordon', 'hand-0')).code, 0);
  assert.equal((await cube('uncordon', 'hand-0')).code, 0);
  const cluster = JSON.parse(
    (await cube('events', '--type', 'node-cordoned,node-uncordoned', '--json')).out,
  ) as { kind: string }[];
  assert.ok(cluster.length >= 2);
  assert.ok(cluster.every((e) => e.kind === 'node-cordoned' || e.kind === 'node-uncordoned'));
  const badType = await cube('events', '--type', 'node-died');
  assert.equal(badType.code, 2);
  assert.match(badType.err, /--type: "node-died" is not one of/);
  assert.equal((await cube('cancel', running)).code, 0);
});

test('jobs show, logs, events and cancel take a job name (the newest job of that name), refuse an ambiguous one, and suggest for an unknown one', async () => {
  const older = await submit('named');
  await runRanks(older, [0], { text: 'older\n' });
  await until('the older job to end', async () =>
    (await jobState(older)) === 'succeeded' ? true : null,
  );
  const newer = await submit('named');
  await runRanks(newer, [0], { text: 'newer\n' });
  await until('the newer job to end', async () =>
    (await jobState(newer)) === 'succeeded' ? true : null,
  );

  const shown = await cube('jobs', 'show', 'named', '--json');
  assert.equal(shown.code, 0, shown.err);
  assert.equal((JSON.parse(shown.out) as { id: string }).id, newer, 'the newest of the name');
  assert.equal((await cube('logs', 'named')).out, 'newer\n');
  const events = JSON.parse((await cube('events', 'named', '--json')).out) as { jobId: string }[];
  assert.ok(events.length > 0 && events.every((e) => e.jobId === newer));

  // Two unfinished jobs of one name: which is meant is a guess, so it is an error with both ids.
  // (ranks: 2 and 2 on a 2-device node: the first runs, the second waits in the queue.)
  const a = await submit('twins', 2);
  const b = await submit('twins', 2);
  const ambiguous = await cube('cancel', 'twins');
  assert.equal(ambiguous.code, 2);
  assert.match(ambiguous.err, /2 unfinished jobs are named "twins"/);
  assert.ok(ambiguous.err.includes(a) && ambiguous.err.includes(b), ambiguous.err);
  assert.equal((await cube('cancel', b)).code, 0);
  const cancelled = await cube('cancel', 'twins', '--json');
  assert.equal(cancelled.code, 0, cancelled.err);
  assert.equal((JSON.parse(cancelled.out) as { id: string; state: string }).id, b);
  // b is the newest "twins": cancelling it again by name is fine; a is cancelled by id.
  assert.equal((await cube('cancel', a)).code, 0);

  const unknown = await cube('jobs', 'show', 'nmaed');
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /UNKNOWN_ID.*unknown job "nmaed"/);
  assert.match(unknown.err, /did you mean "named"/);
  const typoId = await cube('logs', `${newer.slice(0, -1)}x`);
  assert.equal(typoId.code, 2);
  assert.match(typoId.err, new RegExp(`did you mean "${newer}"`));
});

test('logs --tail N prints the last N lines, --tail with --follow goes on from there, and a rank the job lacks is exit 2', async () => {
  const lines = Array.from({ length: 50 }, (_, i) => `line ${i + 1}`);
  const id = await submit('tail', 2);
  await runRanks(id, [0, 0], { text: `${lines.join('\n')}\n` });
  await until('the job to end', async () => ((await jobState(id)) === 'succeeded' ? true : null));

  assert.equal((await cube('logs', id, '--tail', '3')).out, 'line 48\nline 49\nline 50\n');
  assert.equal((await cube('logs', id, '--rank', '1', '--tail', '1')).out, 'line 50\n');
  assert.equal(
    (await cube('logs', id, '--tail', '100')).out,
    `${lines.join('\n')}\n`,
    'more lines asked than written: all',
  );
  assert.equal((await cube('logs', id, '--tail', '0')).out, '');
  const json = JSON.parse((await cube('logs', id, '--tail', '2', '--json')).out) as {
    offset: number;
    text: string;
  };
  assert.equal(json.text, 'line 49\nline 50\n');
  assert.equal(json.offset, Buffer.byteLength(`${lines.slice(0, 48).join('\n')}\n`));
  // The job has ended, so --follow prints the tail and stops at once.
  const followed = await cube('logs', id, '--tail', '2', '--follow');
  assert.equal(followed.code, 0, followed.err);
  assert.equal(followed.out, 'line 49\nline 50\n');

  const badRank = await cube('logs', id, '--rank', '9');
  assert.equal(badRank.code, 2);
  assert.match(badRank.err, new RegExp(`rank 9 out of range: job ${id} has ranks 0\\.\\.1`));
  assert.equal(badRank.out, '');
});

test('logs --tail --follow prints the tail and then new output as it comes until the job ends', async () => {
  const id = await submit('tail-follow');
  const launch = await until(
    'the launch',
    () => commands.find((c) => c.kind === 'launch' && c.jobId === id) ?? null,
  );
  const attempt = launch.attempt ?? 0;
  const log = (text: string): Promise<unknown> =>
    agentCall(
      `${node.nodeId}/logs`,
      { jobId: id, attempt, rank: 0, stream: 'stdout', text },
      node.credential,
    );
  await log('a\nb\nc\n');
  const following = cube('logs', 'tail-follow', '--tail', '1', '--follow', '--json');
  await new Promise((r) => setTimeout(r, 1500));
  await log('d\n');
  await runRanks(id, [0], { text: 'e\n' });
  const r = await following;
  assert.equal(r.code, 0, r.err);
  const chunks = r.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { text: string });
  assert.equal(chunks.map((c) => c.text).join(''), 'c\nd\ne\n');
});

test('submit --wait exits with the job code as srun does: 0, the failing rank code, 128+signal, 130 when cancelled', async () => {
  const wait = async (
    name: string,
    act: (id: string) => Promise<void>,
  ): Promise<{ code: number; out: string; err: string }> => {
    const waiting = cube('submit', specFile(name, 2), '--wait');
    const id = await until(`the job ${name}`, async () => {
      const j = (await cp.store.listJobs()).find((x) => x.spec.name === name);
      return j?.id ?? null;
    });
    await act(id);
    return waiting;
  };
  const ok = await wait('exit-ok', (id) => runRanks(id, [0, 0]));
  assert.equal(ok.code, 0, ok.err);

  // Rank 0 succeeds, rank 1 fails with 7: the first failing rank's code is passed through.
  const failed = await wait('exit-seven', (id) => runRanks(id, [0, 7]));
  assert.equal(failed.code, 7, failed.err);
  assert.match(failed.err, /exit code 7/);
  await uncordon();

  const killed = await wait('exit-killed', (id) =>
    runRanks(id, [null, null], { signal: 'SIGKILL' }),
  );
  assert.equal(killed.code, 137, killed.err);
  await uncordon();

  const cancelled = await wait('exit-cancelled', async (id) => {
    await until('the job to be placed', async () =>
      (await jobState(id)) === 'queued' ? null : true,
    );
    assert.equal((await cube('cancel', id)).code, 0);
  });
  assert.equal(cancelled.code, 130, cancelled.err);
});

test('--watch prints each new state once when stdout is not a terminal, jobs show --watch ends with the job, Ctrl-C ends the rest', async () => {
  const id = await submit('watched');
  await until('the job to be scheduled', async () =>
    (await jobState(id)) === 'queued' ? null : true,
  );
  const show = spawnCube('jobs', 'show', 'watched', '--watch', '-o', 'json');
  const nodes = spawnCube('nodes', '--watch', '--state', 'cordoned', '-o', 'json');
  try {
    await until('the first frame of jobs show --watch', () =>
      show.lines.length > 0 ? true : null,
    );
    await until('the first frame of nodes --watch', () => (nodes.lines.length > 0 ? true : null));
    assert.deepEqual(JSON.parse(nodes.lines[0] ?? ''), [], 'no cordoned node yet');
    await runRanks(id, [0]);
    const ended = await exited(show.child);
    assert.equal(ended.code, 0, show.err());
    const states = show.lines.map((l) => (JSON.parse(l) as { state: string }).state);
    assert.equal(states.at(-1), 'succeeded');
    assert.equal(new Set(show.lines).size, show.lines.length, 'each state once');

    assert.equal((await cube('cordon', 'hand-0')).code, 0);
    await until('nodes --watch to show the cordoned node', () =>
      nodes.lines.length > 1 ? true : null,
    );
    const frame = JSON.parse(nodes.lines[1] ?? '') as { name: string; state: string }[];
    assert.deepEqual(
      frame.map((n) => [n.name, n.state]),
      [['hand-0', 'cordoned']],
    );
    // Heartbeats keep coming; a heartbeat is no change, so nothing more is printed.
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(nodes.lines.length, 2, nodes.lines.join('\n'));
    nodes.child.kill('SIGINT');
    assert.equal((await exited(nodes.child)).code, 0, nodes.err());
  } finally {
    show.child.kill('SIGKILL');
    nodes.child.kill('SIGKILL');
    await cube('uncordon', 'hand-0');
  }
});

test('a plain cube down stops the cluster cube up --data-dir started, and a stale record is reported and cleared', () => {
  const upDir = join(dataDir, 'up-elsewhere');
  const env = cliEnv({ CUBE_STATE_DIR: join(dataDir, 'default-state') });
  const record = join(dataDir, 'config', 'cluster.json');
  const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(process.execPath, [cubeBin, ...args], { encoding: 'utf8', env, timeout: 120_000 });
  const up = run('up', '--nodes', '1', '--spares', '0', '--port', '0', '--data-dir', upDir);
  let down: { status: number | null; stdout: string; stderr: string } | null = null;
  try {
    assert.equal(up.status, 0, up.stderr);
    assert.equal(statSync(record).mode & 0o777, 0o600);
    down = run('down', '--json');
    assert.equal(down.status, 0, down.stderr);
    assert.deepEqual(JSON.parse(down.stdout), { stopped: 2, dataDir: upDir });
    assert.ok(!existsSync(record), 'the record is cleared on down');
  } finally {
    if (down?.status !== 0) run('down', '--data-dir', upDir);
  }

  // A record whose server is gone (the machine rebooted): reported, cleared, not trusted.
  writeFileSync(
    record,
    JSON.stringify({ dataDir: upDir, url: 'http://127.0.0.1:1', serverPid: 2 ** 22 + 17 }),
    { mode: 0o600 },
  );
  const stale = run('down');
  assert.equal(stale.status, 1);
  assert.match(
    stale.stderr,
    /is no longer running \(server pid 4194321 is gone\); record .* cleared/,
  );
  assert.match(stale.stderr, /no cluster is up with data in/);
  assert.ok(!existsSync(record));
});

test('cube completion bash loads in bash and completes subcommands, flags and -o values; zsh and fish scripts come from the same tree', async () => {
  const bash = await cubeBare('completion', 'bash');
  assert.equal(bash.code, 0, bash.err);
  const script = join(dataDir, 'cube.bash');
  writeFileSync(script, bash.out);
  assert.equal(spawnSync('bash', ['-n', script]).status, 0, 'bash -n accepts it');
  const complete = (words: readonly string[]): string[] => {
    const r = spawnSync(
      'bash',
      [
        '-c',
        `source "$1"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _cube; printf '%s\\n' "\${COMPREPLY[@]}"`,
        'complete',
        script,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter((l) => l !== '');
  };
  assert.deepEqual(complete(['cube', 'subm']), ['submit']);
  assert.deepEqual(complete(['cube', 'jobs', 'sh']), ['show']);
  assert.deepEqual(complete(['cube', 'jobs', '--sta']), ['--state']);
  assert.deepEqual(complete(['cube', 'jobs', '-o', 'y']), ['yaml']);
  assert.deepEqual(complete(['cube', 'jobs', '--server', 'http://x', 'show', '--wa']), ['--watch']);
  assert.deepEqual(complete(['cube', 'token', 're']), ['revoke']);
  assert.ok(complete(['cube', '']).includes('completion'), 'every command, this one too');

  const zsh = await cubeBare('completion', 'zsh');
  assert.match(zsh.out, /^#compdef cube/);
  assert.match(zsh.out, /bashcompinit/);
  const fish = await cubeBare('completion', 'fish');
  assert.match(fish.out, /complete -c cube -n 'test \(__cube_path\) = \\'cube jobs\\'' -a 'show'/);
  assert.match(fish.out, /-l output -s o -x -a 'table wide json yaml name'/);
  const bad = await cubeBare('completion', 'powershell');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /shell must be one of bash, zsh, fish/);
});

test('--help of the main commands ends with examples', async () => {
  for (const argv of [
    ['submit'],
    ['jobs'],
    ['jobs', 'show'],
    ['logs'],
    ['events'],
    ['nodes'],
    ['up'],
    ['down'],
    ['completion'],
  ]) {
    const help = await cubeBare(...argv, '--help');
    assert.equal(help.code, 0, help.err);
    assert.match(help.out, /\nExamples:\n {2}\$ cube /, argv.join(' '));
  }
  assert.match((await cubeBare('submit', '--help')).out, /\$ cube submit job\.yaml --wait/);
});

const hasFish = spawnSync('fish', ['--version']).status === 0;
test(
  'cube completion fish loads in fish and completes subcommands and -o values',
  { skip: hasFish ? false : 'fish is not installed (apt-get install fish)' },
  async () => {
    const fish = await cubeBare('completion', 'fish');
    const script = join(dataDir, 'cube.fish');
    writeFileSync(script, fish.out);
    assert.equal(spawnSync('fish', ['-n', script]).status, 0, 'fish -n accepts it');
    const complete = (line: string): string[] => {
      const r = spawnSync('fish', ['-c', `source $argv[1]; complete -C '${line}'`, script], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split('\t')[0] ?? '');
    };
    assert.deepEqual(complete('cube jobs sh'), ['show']);
    assert.deepEqual(complete('cube nodes -o y'), ['yaml']);
    assert.deepEqual(complete('cube jobs show --wa'), ['--watch']);
  },
);

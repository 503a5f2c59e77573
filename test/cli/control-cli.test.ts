// The control commands through the real CLI (`main(argv)`, and `bin/cube.js` for `cube up`)
// against a real control plane on loopback. The node is driven by hand over the agent API
// (join, heartbeats, events, logs), so every state a command reports is one the test made.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { main } from '../../src/cli/main.ts';
import { ProgressLine } from '../../src/cli/progress-line.ts';
import { coldStartSeconds } from '../../src/cli/commands/demo.ts';
import type { Event } from '../../src/control/model/index.ts';
import { agentApi, cliOn, heartbeatLoop } from '../support/api-calls.ts';

const cubeBin = fileURLToPath(new URL('../../bin/cube.js', import.meta.url));

let dataDir: string;
let cp: ControlPlane;
const agentCall = agentApi(() => cp);
const cube = cliOn(() => cp);
let node: { nodeId: string; credential: string };
let heartbeats: NodeJS.Timeout;
const commands: { kind: string; jobId?: string; attempt?: number }[] = [];

function specFile(name: string): string {
  const path = join(dataDir, `${name}.yaml`);
  writeFileSync(
    path,
    [
      `name: ${name}`,
      "command: ['/bin/true']",
      'ranks: { nodes: 1, devicesPerNode: 1 }',
      'deviceType: cpu',
      'restart: { maxRestarts: 0 }',
      '',
    ].join('\n'),
  );
  return path;
}

async function until<T>(what: string, probe: () => Promise<T | null> | T | null): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Plays the agent's part for a launch of `jobId`: the rank runs, prints, and exits with `code`. */
async function runRank(
  jobId: string,
  exitCode: number,
  text = 'hello from rank 0\n',
): Promise<void> {
  const launch = await until(
    'the launch command',
    () => commands.find((c) => c.kind === 'launch' && c.jobId === jobId) ?? null,
  );
  const attempt = launch.attempt ?? 0;
  await agentCall(
    `${node.nodeId}/logs`,
    { jobId, attempt, rank: 0, stream: 'stdout', text },
    node.credential,
  );
  await agentCall(
    `${node.nodeId}/events`,
    {
      events: [
        { kind: 'progress', jobId, attempt, rank: 0, step: 1, loss: 2.5, tokensPerS: 10 },
        { kind: 'rank-exited', jobId, attempt, rank: 0, exitCode, signal: null },
      ],
    },
    node.credential,
  );
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cube-control-cli-'));
  cp = await ControlPlane.start({ dataDir: join(dataDir, 'server'), tickMs: 50 });
  node = (await agentCall('join', {
    joinToken: cp.tokens.joinToken,
    name: 'hand-0',
    labels: { server: 's0' },
    devices: [{ index: 0, kind: 'cpu', model: 'test cpu', memoryBytes: 1 << 30, health: 'ok' }],
    hostMemoryBytes: 1 << 30,
  })) as { nodeId: string; credential: string };
  heartbeats = heartbeatLoop(agentCall, node, commands);
});

after(async () => {
  clearInterval(heartbeats);
  await cp.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('every control command prints machine-readable JSON with --json', async () => {
  const nodes = await cube('nodes', '--json');
  assert.equal(nodes.code, 0, nodes.err);
  const [listed] = JSON.parse(nodes.out) as { id: string; name: string; state: string }[];
  assert.equal(listed?.name, 'hand-0');

  const cordon = await cube('cordon', 'hand-0', '--json');
  assert.equal(cordon.code, 0, cordon.err);
  assert.deepEqual(
    (({ id, state }) => ({ id, state }))(JSON.parse(cordon.out) as { id: string; state: string }),
    { id: node.nodeId, state: 'cordoned' },
  );
  const uncordon = await cube('uncordon', node.nodeId, '--json');
  assert.equal((JSON.parse(uncordon.out) as { state: string }).state, 'ready');

  const submit = await cube('submit', specFile('json-job'), '--json');
  assert.equal(submit.code, 0, submit.err);
  const job = JSON.parse(submit.out) as { id: string; state: string; spec: { name: string } };
  assert.equal(job.spec.name, 'json-job');
  assert.equal(submit.err, '', 'no status lines without --wait');

  await runRank(job.id, 0, 'line one\nline two\n');
  await until('the job to succeed', async () =>
    (await cp.store.getJob(job.id))?.state === 'succeeded' ? true : null,
  );

  const jobs = JSON.parse((await cube('jobs', '--json')).out) as { id: string; state: string }[];
  assert.equal(jobs.find((j) => j.id === job.id)?.state, 'succeeded');
  const shown = JSON.parse((await cube('jobs', 'show', job.id, '--json')).out) as {
    id: string;
    placement: { nodeId: string }[];
    lastProgress: { step: number } | null;
  };
  assert.equal(shown.placement[0]?.nodeId, node.nodeId);
  assert.equal(shown.lastProgress?.step, 1);
  const events = JSON.parse((await cube('events', job.id, '--json')).out) as { kind: string }[];
  assert.ok(events.some((e) => e.kind === 'job-succeeded'));
  const logs = await cube('logs', job.id, '--json');
  assert.equal(logs.code, 0, logs.err);
  assert.deepEqual(JSON.parse(logs.out), {
    jobId: job.id,
    rank: 0,
    attempt: 0,
    offset: 0,
    text: 'line one\nline two\n',
  });
  const plainLogs = await cube('logs', job.id);
  assert.equal(plainLogs.out, 'line one\nline two\n');

  const queued = JSON.parse((await cube('submit', specFile('to-cancel'), '--json')).out) as {
    id: string;
  };
  const cancel = await cube('cancel', queued.id, '--json');
  assert.equal(cancel.code, 0, cancel.err);
  assert.equal((JSON.parse(cancel.out) as { state: string }).state, 'cancelled');
});

test('cube token create prints a role token once, ls lists it without the secret, revoke ends it at once', async () => {
  const created = await cube('token', 'create', '--role', 'viewer', '--name', 'dash', '--json');
  assert.equal(created.code, 0, created.err);
  const token = JSON.parse(created.out) as { id: string; role: string; token: string };
  assert.equal(token.role, 'viewer');
  const nodes = await main(['nodes', '--server', cp.url, '--token', token.token, '--json'], {
    out: () => undefined,
    err: () => undefined,
  });
  assert.equal(nodes, 0);
  const ls = await cube('token', 'ls', '--json');
  assert.equal(ls.code, 0, ls.err);
  assert.ok(!ls.out.includes(token.token) && !ls.out.includes(cp.tokens.apiToken));
  const listed = (JSON.parse(ls.out) as { tokens: { id: string; role: string }[] }).tokens;
  assert.deepEqual(
    listed.find((t) => t.id === token.id),
    { ...listed.find((t) => t.id === token.id), role: 'viewer', revokedAt: null },
  );
  const table = await cube('token', 'ls');
  assert.match(table.out, /ID\s+NAME\s+ROLE\s+CREATED\s+REVOKED/);
  const revoked = await cube('token', 'revoke', 'dash');
  assert.equal(revoked.code, 0, revoked.err);
  assert.match(revoked.out, new RegExp(`revoked viewer token ${token.id}`));
  let err = '';
  const refused = await main(['nodes', '--server', cp.url, '--token', token.token], {
    out: () => undefined,
    err: (t) => (err += t),
  });
  assert.equal(refused, 2);
  assert.match(err, /401/);
  const badRole = await cube('token', 'create', '--role', 'root', '--name', 'x');
  assert.equal(badRole.code, 2);
  assert.match(badRole.err, /--role/);
  // A viewer cannot make tokens.
  const viewer = await cube('token', 'create', '--role', 'viewer', '--name', 'v2', '--json');
  const v2 = (JSON.parse(viewer.out) as { token: string }).token;
  let denied = '';
  const code = await main(
    ['token', 'create', '--role', 'admin', '--name', 'up', '--server', cp.url, '--token', v2],
    { out: () => undefined, err: (t) => (denied += t) },
  );
  assert.equal(code, 2);
  assert.match(denied, /FORBIDDEN/);
});

test('cube login --json checks the token, saves it and says where', async () => {
  process.env.CUBE_CONFIG_DIR = join(dataDir, 'login-config');
  const r = await cube('login', '--json');
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), {
    server: cp.url,
    credentials: join(dataDir, 'login-config', 'credentials.json'),
  });
  const bad = await main(['login', '--server', cp.url, '--token', 'wrong', '--json'], {
    out: () => undefined,
    err: () => undefined,
  });
  assert.equal(bad, 2);
});

test('a command naming an unknown job or node fails with the id, in --json mode too', async () => {
  const logs = await cube('logs', 'j-nosuchjob', '--json');
  assert.equal(logs.code, 2);
  assert.match(logs.err, /UNKNOWN_ID.*j-nosuchjob/);
  assert.equal(logs.out, '');
  const cordon = await cube('cordon', 'no-such-node', '--json');
  assert.equal(cordon.code, 2);
  assert.match(cordon.err, /no-such-node/);
  const badRank = await cube('logs', 'j-x', '--rank', '-1');
  assert.equal(badRank.code, 2);
  assert.match(badRank.err, /--rank must be an integer >= 0/);
});

test('cube submit --wait shows plain status lines on a non-TTY and ends with the outcome', async () => {
  const waiting = cube('submit', specFile('wait-ok'), '--wait');
  const id = await until('the job', async () => {
    const j = (await cp.store.listJobs()).find((x) => x.spec.name === 'wait-ok');
    return j?.id ?? null;
  });
  await runRank(id, 0);
  const r = await waiting;
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`job ${id} submitted`));
  assert.match(r.out, new RegExp(`job ${id} succeeded after 0 restarts`));
  assert.match(r.err, new RegExp(`^waiting for job ${id} to end \\.\\.\\.$`, 'm'));
  assert.match(r.err, new RegExp(`^waiting for job ${id} to end: succeeded after \\d`, 'm'));
  assert.ok(!r.err.includes('\r') && !r.err.includes('\u001b['), 'no terminal control codes');
});

test("cube submit --wait --json prints only the final job, and exits with the failed rank's code", async () => {
  const waiting = cube('submit', specFile('wait-fail'), '--wait', '--json');
  const id = await until('the job', async () => {
    const j = (await cp.store.listJobs()).find((x) => x.spec.name === 'wait-fail');
    return j?.id ?? null;
  });
  await runRank(id, 3);
  const r = await waiting;
  assert.equal(r.code, 3);
  const job = JSON.parse(r.out) as { id: string; state: string; reason: string };
  assert.equal(job.state, 'failed');
  assert.match(job.reason, /exited with code 3/);
  assert.doesNotMatch(r.err, /waiting for/);
  assert.match(r.err, new RegExp(`job ${id} failed`));
});

test('cube logs --follow --json prints one JSON line per chunk until the job ends', async () => {
  commands.length = 0;
  // The failed rank before got its node cordoned (a fault): make it schedulable again.
  assert.equal((await cube('uncordon', 'hand-0')).out, 'node hand-0 is ready\n');
  const submitted = JSON.parse((await cube('submit', specFile('follow'), '--json')).out) as {
    id: string;
  };
  const following = cube('logs', submitted.id, '--follow', '--json');
  await new Promise((r) => setTimeout(r, 300));
  await runRank(submitted.id, 0, 'first chunk\n');
  const r = await following;
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trim().split('\n');
  assert.ok(lines.length >= 1);
  const chunks = lines.map((l) => JSON.parse(l) as { text: string; offset: number });
  assert.equal(chunks.map((c) => c.text).join(''), 'first chunk\n');
  assert.equal(chunks[0]?.offset, 0);
  assert.equal(r.err, '', 'no status lines in --json mode');
});

test('cube up waits for its agents with plain status lines, --json prints the cluster, cube down stops it', () => {
  const upDir = join(dataDir, 'up');
  const env = { ...process.env, CUBE_CONFIG_DIR: join(dataDir, 'config') };
  const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(process.execPath, [cubeBin, ...args], { encoding: 'utf8', env, timeout: 120_000 });
  const up = run(
    'up',
    '--nodes',
    '1',
    '--spares',
    '1',
    '--port',
    '0',
    '--data-dir',
    upDir,
    '--json',
  );
  try {
    assert.equal(up.status, 0, up.stderr);
    const cluster = JSON.parse(up.stdout) as {
      url: string;
      apiToken: string;
      joinToken: string;
      nodes: { name: string; state: string; role: string }[];
    };
    // The server prints where its tokens are, never the tokens: its log is a file.
    const serverLog = readFileSync(join(upDir, 'server.log'), 'utf8');
    assert.match(serverLog, /"tokensFile":/);
    assert.ok(!serverLog.includes(cluster.apiToken) && !serverLog.includes(cluster.joinToken));
    assert.equal(statSync(join(upDir, 'server.log')).mode & 0o777, 0o600);
    assert.deepEqual(
      cluster.nodes.map((n) => [n.name, n.state, n.role]),
      [
        ['node-0', 'ready', 'worker'],
        ['spare-0', 'ready', 'spare'],
      ],
    );
    // bin/cube.js's one line when dist/ is missing or stale (it runs the sources) is no status line.
    assert.equal(
      up.stderr.replace(/^cube: warning: .* `npm run build` compiles them\n/, ''),
      '',
      'no status lines in --json mode',
    );
  } finally {
    const down = run('down', '--data-dir', upDir, '--json');
    assert.equal(down.status, 0, down.stderr);
    assert.equal((JSON.parse(down.stdout) as { stopped: number }).stopped, 3);
  }
  const plain = run('up', '--nodes', '1', '--spares', '0', '--port', '0', '--data-dir', upDir);
  try {
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stdout, /cube is up: 1 worker node x 1 cpu device, 0 spares, all joined/);
    assert.match(plain.stderr, /^waiting for the control plane to start \.\.\.$/m);
    assert.match(plain.stderr, /^waiting for 1 agent to join \.\.\.$/m);
    assert.match(plain.stderr, /^waiting for 1 agent to join: all joined after \d/m);
    assert.ok(!plain.stderr.includes('\r') && !plain.stderr.includes('\u001b['));
  } finally {
    const down = run('down', '--data-dir', upDir);
    assert.match(down.stdout, /cube is down \(2 processes stopped\)/);
  }
});

test('on a TTY the status line is redrawn in place with the time waited, and cleared for other output', () => {
  let now = 1_000;
  let tty = '';
  const lines: string[] = [];
  const progress = new ProgressLine({
    mode: 'tty',
    output: { out: (t) => lines.push(`out:${t}`), err: (t) => lines.push(`err:${t}`) },
    tty: { write: (t: string) => (tty += t) },
    now: () => now,
    redrawMs: 60_000,
  });
  progress.begin('2 agents to join');
  now += 1_500;
  progress.update('1 of 2 joined');
  progress.print('an event');
  progress.end('all joined');
  assert.deepEqual(lines, ['out:an event'], 'nothing but the command output goes to the streams');
  const frames = tty.split('\r\x1b[2K').filter((f) => f !== '');
  assert.match(frames[0] ?? '', /waiting for 2 agents to join 0\.0 s$/);
  assert.match(frames[1] ?? '', /waiting for 2 agents to join 1\.5 s — 1 of 2 joined$/);
  assert.ok(tty.endsWith('\r\x1b[2K'), 'the line is cleared at the end');
  assert.equal(ProgressLine.modeFor({ json: true, isTty: true }), 'off');
  assert.equal(ProgressLine.modeFor({ isTty: false }), 'plain');
});

test("cube demo's cold start is the first attempt's launch to training, from the events alone", () => {
  const at = (s: number): string => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
  const events = [
    { id: 1, at: at(0), kind: 'job-submitted', jobId: 'j-a', data: { name: 'x' } },
    { id: 2, at: at(1), kind: 'job-scheduled', jobId: 'j-a', attempt: 0, data: {} },
    { id: 3, at: at(4), kind: 'job-running', jobId: 'j-a', attempt: 0, data: {} },
    { id: 4, at: at(9), kind: 'job-scheduled', jobId: 'j-a', attempt: 1, data: {} },
    { id: 5, at: at(11), kind: 'job-running', jobId: 'j-a', attempt: 1, data: {} },
  ] as unknown as Event[];
  assert.equal(coldStartSeconds(events), 3);
  assert.equal(coldStartSeconds(events.slice(0, 2)), null, 'never ran');
});

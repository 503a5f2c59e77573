import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FakeControlPlane, waitFor } from './fake-control-plane.ts';
import { alive, defer, freePort, launchCommand, python, startAgent, tempDirs } from './helpers.ts';

const GPT = [
  python,
  'examples/gpt/train.py',
  '--steps',
  '6',
  '--ckpt-every',
  '2',
  '--layers',
  '1',
  '--hidden',
  '32',
  '--heads',
  '2',
  '--seq-len',
  '16',
  '--batch',
  '2',
];

test('the agent joins with its inventory, runs two GPT ranks to completion and reports progress, checkpoints, exits and logs', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const dirs = tempDirs(t);
  const agent = await startAgent(t, cp, dirs);

  const join0 = cp.joins[0];
  assert.ok(join0 !== undefined);
  assert.equal(join0.body.joinToken, cp.joinToken);
  assert.equal(join0.body.name, 'node-a');
  assert.deepEqual(join0.body.labels, { server: 's0', superNode: 'sn0' });
  assert.deepEqual(
    join0.body.devices.map((d) => [d.index, d.kind, d.health]),
    [
      [0, 'cpu', 'ok'],
      [1, 'cpu', 'ok'],
    ],
  );
  assert.ok(join0.body.hostMemoryBytes > 0);
  assert.ok(join0.body.ckpt.peerPort > 0);
  assert.equal(join0.body.host, '127.0.0.1');
  const nodeId = agent.nodeId ?? '';
  assert.equal(nodeId, join0.nodeId);

  const beat = await waitFor('a heartbeat', () => cp.heartbeats[0]);
  assert.equal(beat.body.health.devices.length, 2);
  assert.ok((beat.body.health.freeBytes.l1 ?? 0) > 0);
  assert.deepEqual(
    beat.body.health.probes.map((p) => [p.name, p.ok]),
    [
      ['devices', true],
      ['free-space-l1', true],
      ['free-space-l3', true],
    ],
  );

  // The control plane repeats the launch until it sees the ranks: it starts them once.
  cp.queue(
    nodeId,
    launchCommand('j-gpt', GPT, { masterPort: await freePort(), l3Path: dirs.l3 }),
    3,
  );
  const exits = await waitFor(
    'both ranks to exit',
    () => {
      const e = cp.eventsOf('rank-exited');
      return e.length >= 2 && e;
    },
    { timeoutMs: 60_000 },
  );
  assert.deepEqual(
    exits.map((e) => [e.jobId, e.attempt, e.rank, e.exitCode, e.signal]).sort(),
    [
      ['j-gpt', 0, 0, 0, null],
      ['j-gpt', 0, 1, 0, null],
    ],
    `rank 0 stderr: ${cp.logText('j-gpt', 0, 'stderr')}`,
  );

  const progress = cp.eventsOf('progress');
  for (const rank of [0, 1]) {
    const mine = progress.filter((p) => p.rank === rank);
    assert.ok(mine.length > 0, `progress of rank ${rank}`);
    const last = mine[mine.length - 1];
    assert.equal(last?.step, 6, 'the last step is reported before the exit');
    assert.equal(typeof last?.loss, 'number');
    assert.ok((last?.tokensPerS ?? 0) > 0);
  }

  const committed = await waitFor('the last step committed at L3', () => {
    const c = cp.eventsOf('checkpoint-committed');
    return c.some((e) => e.level === 'L3' && e.step === 6) && c;
  });
  assert.deepEqual(
    committed.filter((e) => e.level === 'L1').map((e) => [e.jobId, e.step]),
    [
      ['j-gpt', 2],
      ['j-gpt', 4],
      ['j-gpt', 6],
    ],
  );
  assert.ok(existsSync(join(dirs.l3, 'j-gpt', 'step-0000000006', 'manifest.json')));

  // Output went to the control plane in chunks and to the rank's own log file.
  assert.match(cp.logText('j-gpt', 0, 'stdout'), /^step 6 loss /m);
  assert.ok(existsSync(join(dirs.dataDir, 'logs', 'j-gpt', '0', 'rank-1.log')));
  assert.match(
    readFileSync(join(dirs.dataDir, 'logs', 'j-gpt', '0', 'rank-0.log'), 'utf8'),
    /step 6 loss/,
  );

  // The heartbeat lists both ranks as exited, with their last progress.
  const ranks = await waitFor('a heartbeat with the exited ranks', () => {
    const last = cp.heartbeats[cp.heartbeats.length - 1]?.body.ranks;
    return last?.length === 2 && last.every((r) => r.state === 'exited') && last;
  });
  assert.deepEqual(
    ranks.map((r) => [r.rank, r.exitCode, r.progress?.step]),
    [
      [0, 0, 6],
      [1, 0, 6],
    ],
  );
  assert.equal(cp.eventsOf('rank-exited').length, 2, 'no rank was started twice');
});

test('ranks get torch’s and Cube’s environment contract', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const dirs = tempDirs(t);
  const agent = await startAgent(t, cp, dirs);
  const script = [
    'import json, os',
    'keys = ["MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",',
    '  "CUBE_JOB_ID", "CUBE_ATTEMPT", "CUBE_NODE", "CUBE_CKPT_L1", "CUBE_CKPT_L3", "CUBE_CKPT_L3_EVERY",',
    '  "CUBE_CKPT_KEEP", "CUBE_CKPT_EVERY", "CUBE_CKPT_SOCKET", "CUBE_AGENT_SOCKET", "OMP_NUM_THREADS", "MY_VAR"]',
    'print("ENV " + json.dumps({k: os.environ.get(k) for k in keys} | {"cwd": os.getcwd()}))',
  ].join('\n');
  const command = launchCommand('j-env', [python, '-c', script], {
    attempt: 3,
    masterPort: 29123,
    env: { MY_VAR: 'x', RANK: 'not-this' },
    l3Path: dirs.l3,
  });
  // Rank 5 of 8 runs here as local rank 1.
  cp.queue(agent.nodeId ?? '', {
    ...command,
    ranks: [
      { rank: 4, localRank: 0 },
      { rank: 5, localRank: 1 },
    ],
    worldSize: 8,
  });
  await waitFor('both ranks to exit', () => cp.eventsOf('rank-exited').length === 2);
  const env = (rank: number): Record<string, string | null> =>
    JSON.parse(/^ENV (.*)$/m.exec(cp.logText('j-env', rank, 'stdout'))?.[1] ?? '{}') as Record<
      string,
      string | null
    >;
  assert.deepEqual(env(5), {
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: '29123',
    RANK: '5',
    WORLD_SIZE: '8',
    LOCAL_RANK: '1',
    LOCAL_WORLD_SIZE: '2',
    CUBE_JOB_ID: 'j-env',
    CUBE_ATTEMPT: '3',
    CUBE_NODE: 'node-a',
    CUBE_CKPT_L1: dirs.l1,
    CUBE_CKPT_L3: dirs.l3,
    CUBE_CKPT_L3_EVERY: '1',
    CUBE_CKPT_KEEP: 'L1=2,L3=3',
    CUBE_CKPT_EVERY: '2',
    CUBE_CKPT_SOCKET: agent.ckptSocketPath,
    CUBE_AGENT_SOCKET: agent.socketPath,
    OMP_NUM_THREADS: '1',
    MY_VAR: 'x',
    cwd: resolve(command.workingDir as string),
  });
  assert.equal(env(4).RANK, '4');
  assert.equal(env(4).LOCAL_RANK, '0');
});

test('a rank that exits non-zero is reported at once with its code', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const agent = await startAgent(t, cp, tempDirs(t), { heartbeatMs: 1000 });
  cp.queue(
    agent.nodeId ?? '',
    launchCommand(
      'j-fail',
      [python, '-c', 'import sys; print("bye", file=sys.stderr); sys.exit(7)'],
      { ranks: 1 },
    ),
  );
  const delivered = await waitFor(
    'the launch to be delivered',
    () => cp.heartbeats.length >= 2 && cp.heartbeats.length,
  );
  const [exit] = await waitFor('the exit', () => {
    const e = cp.eventsOf('rank-exited');
    return e.length > 0 && e;
  });
  assert.deepEqual(exit, {
    kind: 'rank-exited',
    jobId: 'j-fail',
    attempt: 0,
    rank: 0,
    exitCode: 7,
    signal: null,
  });
  assert.equal(cp.heartbeats.length, delivered, 'reported before the next heartbeat');
  assert.equal(cp.logText('j-fail', 0, 'stderr'), 'bye\n');
});

test('a kill command stops all ranks of the job within the grace period', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const agent = await startAgent(t, cp, tempDirs(t), { killGraceMs: 800 });
  // Rank 1 ignores SIGTERM: it needs the SIGKILL after the grace.
  const script = [
    'import os, signal, time',
    'if os.environ["RANK"] == "1": signal.signal(signal.SIGTERM, signal.SIG_IGN)',
    'print("ready", flush=True)',
    'time.sleep(60)',
  ].join('\n');
  cp.queue(agent.nodeId ?? '', launchCommand('j-kill', [python, '-c', script]));
  await waitFor('both ranks ready', () =>
    [0, 1].every((r) => cp.logText('j-kill', r).includes('ready')),
  );
  const pids = agent.snapshot().ranks.map((r) => r.pid ?? 0);
  const started = Date.now();
  cp.queue(agent.nodeId ?? '', { kind: 'kill', jobId: 'j-kill', attempt: 0 });
  const exits = await waitFor('both exits', () => {
    const e = cp.eventsOf('rank-exited');
    return e.length === 2 && e;
  });
  const tookMs = Date.now() - started;
  assert.deepEqual(exits.map((e) => [e.rank, e.signal]).sort(), [
    [0, 'SIGTERM'],
    [1, 'SIGKILL'],
  ]);
  assert.ok(tookMs < 800 + 1500, `took ${tookMs} ms`);
  for (const pid of pids) assert.equal(alive(pid), false);
});

test('an agent restart re-joins with the same node id; a control plane that forgot the node gets a fresh join', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const dirs = tempDirs(t);
  const first = await startAgent(t, cp, dirs);
  const nodeId = first.nodeId;
  await first.stop();
  const credentialFile = join(dirs.dataDir, 'credential.json');
  assert.equal(statSync(credentialFile).mode & 0o777, 0o600);
  const stored = JSON.parse(readFileSync(credentialFile, 'utf8')) as { nodeId: string };
  assert.equal(stored.nodeId, nodeId);

  const second = await startAgent(t, cp, dirs);
  assert.equal(second.nodeId, nodeId);
  const credential = cp.nodes.get(nodeId ?? '')?.credential;
  assert.equal(cp.joins[1]?.authorization, `Bearer ${credential}`);
  assert.equal(cp.joins[1]?.body.credential, credential);
  assert.equal(cp.joins[0]?.body.credential, undefined);

  cp.forgetNodes();
  await waitFor('a fresh join', () => cp.joins.length === 3);
  // The join is recorded before its reply reaches the agent.
  await waitFor('the new node id', () => second.nodeId !== nodeId);
  assert.notEqual(second.nodeId, null);
  await waitFor('heartbeats under the new id', () =>
    cp.heartbeats.some((h) => h.nodeId === second.nodeId),
  );
});

test('a failing command probe is reported as a fault, and so is an injected one', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const agent = await startAgent(t, cp, tempDirs(t), {
    probeCommand: 'echo "ib0 link down" >&2; exit 1',
  });
  const failed = await waitFor('probe-failed', () => cp.eventsOf('probe-failed')[0]);
  assert.equal(failed.name, 'command');
  assert.match(failed.message, /exited 1: ib0 link down/);
  const beat = await waitFor('a heartbeat with the probe', () =>
    cp.heartbeats.find((h) => h.body.health.probes.some((p) => p.name === 'command')),
  );
  assert.deepEqual(beat.body.health.probes.find((p) => p.name === 'command')?.ok, false);
  // Reported once per failure, not once per check.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(cp.eventsOf('probe-failed').length, 1);

  cp.queue(agent.nodeId ?? '', { kind: 'fault', fault: 'fail-probe', message: 'demo' });
  const injected = await waitFor('the injected fault', () =>
    cp.eventsOf('probe-failed').find((e) => e.name === 'injected'),
  );
  assert.equal(injected.message, 'demo');
});

test('ranks keep running while the control plane is down and are found again when it returns', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const agent = await startAgent(t, cp, tempDirs(t));
  cp.queue(
    agent.nodeId ?? '',
    launchCommand(
      'j-long',
      [python, '-c', 'import time; print("up", flush=True); time.sleep(1.5); print("done")'],
      {
        ranks: 1,
      },
    ),
  );
  await waitFor('the rank to start', () => cp.logText('j-long', 0).includes('up'));
  await cp.down();
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(agent.snapshot().ranks[0]?.state, 'running');
  // The rank finishes while nobody listens: its exit and output wait for the control plane.
  await waitFor('the rank to finish', () => agent.snapshot().ranks[0]?.state === 'exited', {
    timeoutMs: 5000,
  });
  const before = cp.heartbeats.length;
  await cp.up();
  await waitFor('the queued exit', () => cp.eventsOf('rank-exited')[0], { timeoutMs: 10_000 });
  await waitFor('heartbeats again', () => cp.heartbeats.length > before, { timeoutMs: 10_000 });
  assert.match(cp.logText('j-long', 0), /done/);
  assert.equal(cp.joins.length, 1, 'no re-join was needed');
});

test('injected faults: kill-rank SIGKILLs one rank; kill-node kills every rank and the checkpoint daemon silently and ends the agent', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const agent = await startAgent(t, cp, tempDirs(t));
  const nodeId = agent.nodeId ?? '';
  cp.queue(
    nodeId,
    launchCommand('j-fault', [
      python,
      '-c',
      'import time; print("ready", flush=True); time.sleep(60)',
    ]),
  );
  await waitFor('both ranks ready', () =>
    [0, 1].every((r) => cp.logText('j-fault', r).includes('ready')),
  );
  const pids = agent.snapshot().ranks.map((r) => r.pid ?? 0);
  const daemonPid = agent.snapshot().ckptPid ?? 0;
  assert.equal(alive(daemonPid), true);
  cp.queue(nodeId, { kind: 'fault', fault: 'kill-rank', jobId: 'j-fault', rank: 1 });
  const [killed] = await waitFor('the killed rank', () => {
    const e = cp.eventsOf('rank-exited');
    return e.length > 0 && e;
  });
  assert.deepEqual([killed?.rank, killed?.signal], [1, 'SIGKILL']);
  cp.queue(nodeId, { kind: 'fault', fault: 'kill-node' });
  assert.equal(await agent.done, 'killed');
  assert.equal(alive(pids[0] ?? 0), false);
  assert.equal(alive(daemonPid), false, 'the checkpoint daemon is lost with the node');
  assert.equal(agent.snapshot().ckptPid, null);
  const beats = cp.heartbeats.length;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(cp.heartbeats.length, beats, 'a lost node sends nothing more');
  assert.equal(cp.eventsOf('rank-exited').length, 1, 'nor reports its ranks');
});

test('a rank whose program does not exist is reported as exited with code 127', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const agent = await startAgent(t, cp, tempDirs(t));
  cp.queue(agent.nodeId ?? '', launchCommand('j-missing', ['/no/such/python'], { ranks: 1 }));
  const exit = await waitFor('the exit', () => cp.eventsOf('rank-exited')[0]);
  assert.deepEqual([exit.exitCode, exit.signal], [127, null]);
  assert.match(cp.logText('j-missing', 0, 'stderr'), /cannot start rank .*ENOENT/);
});

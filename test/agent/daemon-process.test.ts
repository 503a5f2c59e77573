import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { NodeAgent, cpuPlugin } from '../../src/agent/index.ts';
import { saveShard, slotFile } from '../../src/ckpt/index.ts';
import { main } from '../../src/cli/main.ts';
import { FakeControlPlane, waitFor } from './fake-control-plane.ts';
import {
  alive,
  defer,
  launchCommand,
  python,
  repoRoot,
  spawnCliAgent,
  startAgent,
  tempDirs,
} from './helpers.ts';

const cubeBin = join(repoRoot, 'bin/cube.js');

/** The niceness of every thread of `pid` (field 19 of /proc/<pid>/task/<tid>/stat). */
function threadNiceness(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after `(comm)` start at field 3 (state); nice is field 19.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19 - 3]);
  });
}

/** The CPUs every thread of `pid` may run on, as the kernel writes them (e.g. `0-1`). */
function threadCpus(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map(
    (tid) =>
      /^Cpus_allowed_list:\s*(\S+)$/m.exec(
        readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'),
      )?.[1] ?? '?',
  );
}

/** The process ids whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

function call(
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, path, method, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, json: text === '' ? null : JSON.parse(text) }),
        );
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

test('the checkpoint daemon runs as a child process whose every thread has the configured niceness, while the agent keeps its own', async (t) => {
  const before = threadNiceness(process.pid)[0] ?? 0;
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const agent = await startAgent(t, cp, tempDirs(t), { ckptNice: 7 });
  const pid = agent.snapshot().ckptPid;
  assert.ok(pid !== null && pid !== process.pid, 'the daemon is a process of its own');
  assert.match(cmdline(pid), /ckpt daemon .*--ipc/);
  const threads = threadNiceness(pid);
  assert.ok(threads.length > 1, `node has several threads, found ${threads.length}`);
  assert.deepEqual(
    threads,
    threads.map(() => Math.max(before, 7)),
  );
  // This process hosts the agent: its main thread (heartbeats) keeps its priority.
  assert.equal(threadNiceness(process.pid)[0], before);
  assert.equal(before, 0, 'the tests run at normal priority');
  // The daemon's API answers on its own socket.
  const status = await call(agent.ckptSocketPath, 'GET', '/v1/status');
  assert.equal((status.json as { node: string }).node, 'node-a');
  assert.deepEqual((status.json as { peer: unknown }).peer, agent.snapshot().peer);
});

test('with ckptCpus every thread of the daemon, and each rank’s checkpoint thread (CUBE_CKPT_CPUS), stay on the housekeeping cores, the ranks on the others, and the agent keeps its own', async (t) => {
  if (availableParallelism() < 2)
    return t.skip('needs 2 CPUs: one for checkpoint work, one for ranks');
  const mine = [...new Set(threadCpus(process.pid))];
  const last = availableParallelism() - 1;
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const dirs = tempDirs(t);
  const agent = await startAgent(t, cp, dirs, { ckptCpus: [last] });
  const pid = agent.snapshot().ckptPid ?? 0;
  assert.match(cmdline(pid), new RegExp(`ckpt daemon .*--cpus ${last}`));
  const threads = threadCpus(pid);
  assert.ok(threads.length > 1, `node has several threads, found ${threads.length}`);
  assert.deepEqual(new Set(threads), new Set([String(last)]));
  assert.deepEqual([...new Set(threadCpus(process.pid))], mine, 'the agent keeps its CPUs');
  // The rank: its own CPUs, a thread it starts, and its Checkpointer's background thread.
  const script = [
    'import json, os, threading, torch, cube',
    'seen = {}',
    'def started(): seen["thread"] = sorted(os.sched_getaffinity(0))',
    't = threading.Thread(target=started); t.start(); t.join()',
    'c = cube.Checkpointer()',
    'finish = c._finish',
    'def timed(job): seen["ckpt"] = sorted(os.sched_getaffinity(0)); finish(job)',
    'c._finish = timed',
    'c.save(1, {"x": torch.ones(1)}); c.wait(); c.close()',
    'seen["rank"] = sorted(os.sched_getaffinity(0)); seen["env"] = os.environ.get("CUBE_CKPT_CPUS")',
    'print("CPUS " + json.dumps(seen), flush=True)',
  ].join('\n');
  cp.queue(
    agent.nodeId ?? '',
    launchCommand('j-cpus', [python, '-c', script], {
      ranks: 1,
      l3Path: dirs.l3,
      env: { PYTHONPATH: join(repoRoot, 'python') },
    }),
  );
  await waitFor('the rank to exit', () => cp.eventsOf('rank-exited').length === 1);
  const out = cp.logText('j-cpus', 0, 'stdout');
  const seen = JSON.parse(/^CPUS (.*)$/m.exec(out)?.[1] ?? 'null') as unknown;
  const rankCpus = [...Array(last).keys()];
  assert.deepEqual(
    seen,
    { thread: rankCpus, ckpt: [last], rank: rankCpus, env: String(last) },
    `${out}${cp.logText('j-cpus', 0, 'stderr')}`,
  );
});

test('an agent refuses ckptCpus that leave no CPU for the ranks', () => {
  const every = [...Array(availableParallelism()).keys()];
  assert.throws(
    () =>
      new NodeAgent({
        server: 'http://127.0.0.1:1',
        joinToken: 't',
        name: 'node-a',
        dataDir: '/nonexistent',
        devices: cpuPlugin({ count: 1 }),
        ckptCpus: every,
      }),
    /INVALID_VALUE|leave no CPU for the ranks/,
  );
});

test('a SIGKILLed daemon is restarted on the same port with its jobs’ configuration and registrations, and the next checkpoint commits', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const dirs = tempDirs(t);
  const agent = await startAgent(t, cp, dirs);
  const nodeId = agent.nodeId ?? '';
  // A launch configures the daemon for the job (its L3 root); the rank itself just waits.
  cp.queue(
    nodeId,
    launchCommand('j-re', [python, '-c', 'import time; print("up", flush=True); time.sleep(60)'], {
      ranks: 1,
      l3Path: dirs.l3,
    }),
  );
  await waitFor('the rank to start', () => cp.logText('j-re', 0).includes('up'));
  const socket = agent.ckptSocketPath;
  // L3 every 2nd checkpoint of every 2 steps: step 4 goes to L3, step 2 does not.
  const registered = await call(socket, 'POST', '/v1/jobs/j-re/ranks/0/register', {
    worldSize: 1,
    localRanks: [0],
    l3Every: 2,
    everySteps: 2,
  });
  assert.equal(registered.status, 200);
  const first = agent.snapshot();
  const pid = first.ckptPid ?? 0;
  // The registration reaches the agent over IPC as the API answers; let it land.
  await new Promise((r) => setTimeout(r, 300));
  process.kill(pid, 'SIGKILL');
  const next = await waitFor(
    'a new daemon',
    () => {
      const p = agent.snapshot().ckptPid;
      return p !== null && p !== pid && p;
    },
    { timeoutMs: 60_000 },
  );
  assert.equal(alive(pid), false);
  assert.deepEqual(agent.snapshot().peer, first.peer, 'the same peer address');
  assert.match(cmdline(next), /ckpt daemon/);
  // Its socket file is there before it listens (the killed one left it): poll the API.
  for (let tries = 0; ; tries += 1) {
    const up = await call(socket, 'GET', '/v1/status').then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) break;
    assert.ok(tries < 600, 'the restarted daemon answers on its socket');
    await new Promise((r) => setTimeout(r, 100));
  }

  // The rank saves without registering again: the agent replayed its registration, L3
  // cadence included (a daemon without the interval would persist step 2 as well).
  for (const [slot, step] of [
    [0, 2],
    [1, 4],
  ] as const) {
    await call(socket, 'POST', `/v1/jobs/j-re/ranks/0/slots/${slot}/lease`, {});
    const record = await saveShard(dirs.l1, {
      job: 'j-re',
      step,
      rank: 0,
      worldSize: 1,
      node: 'node-a',
      tensors: { w: { shape: [256], data: new Float32Array(256).fill(step) } },
      slot,
    });
    assert.equal(record.file, slotFile(0, slot));
    const saved = await call(socket, 'POST', '/v1/jobs/j-re/saved', record);
    assert.equal(saved.status, 202, JSON.stringify(saved.json));
  }
  const committed = await waitFor('the L1 and L3 commits', () => {
    const c = cp.eventsOf('checkpoint-committed').filter((e) => e.jobId === 'j-re');
    return c.some((e) => e.level === 'L3') && c;
  });
  assert.deepEqual(
    committed.map((e) => [e.level, e.step]),
    [
      ['L1', 2],
      ['L1', 4],
      ['L3', 4],
    ],
  );
  assert.ok(!existsSync(join(dirs.l3, 'j-re', 'step-0000000002')), 'step 2 is not an L3 step');
  // L3 went to the launch command's l3Path: the configuration was re-sent.
  assert.ok(existsSync(join(dirs.l3, 'j-re', 'step-0000000004', 'manifest.json')));
  assert.equal(cp.joins.length, 1, 'same port: nothing to re-announce');
});

test('a daemon restarted while another program holds its port listens on a new one, which the agent announces by joining again', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const agent = await startAgent(t, cp, tempDirs(t));
  const first = agent.snapshot();
  const port = first.peer?.port ?? 0;
  assert.equal(cp.joins[0]?.body.ckpt.peerPort, port);
  process.kill(first.ckptPid ?? 0, 'SIGKILL');
  await waitFor('the daemon gone', () => !alive(first.ckptPid ?? 0));
  // Take the port before the new daemon (which needs a second or so to start) binds it.
  // The kernel may release the dead daemon's listener a moment after it is gone.
  const squatter = createServer();
  for (let tries = 0; ; tries += 1) {
    const error = await new Promise<Error | null>((resolve) => {
      squatter.once('error', resolve);
      squatter.listen(port, '127.0.0.1', () => {
        squatter.off('error', resolve);
        resolve(null);
      });
    });
    if (error === null) break;
    assert.ok(tries < 100, `port ${port} still taken: ${error.message}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  defer(t, () => new Promise<void>((resolve) => squatter.close(() => resolve())));
  const rejoin = await waitFor('a join with the new port', () => cp.joins[1], {
    timeoutMs: 60_000,
  });
  const moved = agent.snapshot().peer?.port ?? 0;
  assert.notEqual(moved, port);
  assert.equal(rejoin.body.ckpt.peerPort, moved);
  assert.equal(agent.nodeId, first.nodeId, 'the same node');
  const status = await call(agent.ckptSocketPath, 'GET', '/v1/status');
  assert.equal((status.json as { peer: { port: number } }).peer.port, moved);
});

test('an agent whose daemon cannot start fails to start, quoting the daemon’s stderr', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  defer(t, () => new Promise<void>((resolve) => taken.close(() => resolve())));
  const address = taken.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await assert.rejects(
    startAgent(t, cp, tempDirs(t), { ckptListen: { host: '127.0.0.1', port } }),
    new RegExp(
      `checkpoint daemon of node-a exited before it was ready \\(exit code 1\\); its stderr ends:\\n.*EADDRINUSE.*${port}`,
    ),
  );
  assert.equal(cp.joins.length, 0);
});

test('a cube agent killed with SIGKILL leaves no checkpoint daemon behind', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const dirs = tempDirs(t);
  const agent = spawnCliAgent(cp, dirs, ['--devices', 'cpu:1', '--ckpt-nice', '5']);
  const child = agent.child;
  defer(t, () => void child.kill('SIGKILL'));
  await waitFor('the join', () => agent.stdout.includes('"joined":true'), { timeoutMs: 60_000 });
  const agentPid = child.pid ?? 0;
  const [daemon] = childrenOf(agentPid).filter((p) => cmdline(p).includes('ckpt daemon'));
  assert.ok(daemon !== undefined, `a daemon child of the agent; agent stderr: ${agent.stderr}`);
  defer(t, () => {
    if (alive(daemon)) process.kill(daemon, 'SIGKILL');
  });
  assert.deepEqual(
    [...new Set(threadNiceness(daemon))],
    [Math.max(threadNiceness(process.pid)[0] ?? 0, 5)],
  );
  child.kill('SIGKILL');
  await agent.exited;
  await waitFor('the orphaned daemon to exit', () => !alive(daemon), { timeoutMs: 20_000 });
});

test('cube agent refuses a --ckpt-nice outside 0..19, and cube ckpt daemon a bad --nice or an --ipc without a channel, with exit code 2', async () => {
  const lines: string[] = [];
  const output = { out: (s: string) => lines.push(s), err: (s: string) => lines.push(s) };
  const base = ['agent', '--server', 'http://127.0.0.1:1', '--token', 't'];
  assert.equal(await main([...base, '--ckpt-nice', '25'], output), 2);
  assert.match(lines.join('\n'), /BAD_FLAG.*--ckpt-nice must be an integer from 0 to 19, got "25"/);
  assert.equal(await main([...base, '--ckpt-nice', '-1'], output), 2);
  assert.equal(await main([...base, '--ckpt-nice', 'low'], output), 2);
  const daemon = ['ckpt', 'daemon', '--l1', '/tmp/x', '--l2', '/tmp/y', '--socket', '/tmp/z'];
  assert.equal(await main([...daemon, '--nice', '20'], output), 2);
  assert.match(lines.join('\n'), /BAD_FLAG.*--nice must be an integer from 0 to 19, got "20"/);
  assert.equal(await main([...base, '--ckpt-cpus', '0-'], output), 2);
  assert.match(
    lines.join('\n'),
    /BAD_FLAG.*--ckpt-cpus: "0-" in "0-" is not a CPU number or range/,
  );
  assert.equal(await main([...daemon, '--cpus', '4096'], output), 2);
  assert.match(
    lines.join('\n'),
    /BAD_FLAG.*--cpus: CPU 4096 does not exist \(this machine has CPUs 0-/,
  );
  assert.equal(await main([...daemon, '--ipc'], output), 2, 'no IPC channel here');
  assert.match(lines.join('\n'), /BAD_FLAG.*--ipc needs a Node IPC channel/);
});

interface IpcDaemon {
  readonly child: ChildProcess;
  readonly messages: unknown[];
  readonly exit: Promise<{ code: number | null; signal: string | null }>;
  output: string;
}

function ipcDaemon(dirs: { dataDir: string; l1: string }, socket: string): IpcDaemon {
  const child = spawn(
    process.execPath,
    [
      cubeBin,
      'ckpt',
      'daemon',
      '--node',
      'node-x',
      '--l1',
      dirs.l1,
      '--l2',
      join(dirs.dataDir, 'l2'),
      '--socket',
      socket,
      '--ipc',
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
  );
  const d: IpcDaemon = {
    child,
    messages: [],
    exit: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    output: '',
  };
  child.on('message', (m) => d.messages.push(m));
  for (const stream of [child.stdout, child.stderr])
    stream?.setEncoding('utf8').on('data', (c: string) => (d.output += c));
  return d;
}

test('cube ckpt daemon --ipc reports ready, ignores messages it does not understand, obeys valid ones, and exits when its parent disconnects', async (t) => {
  const dirs = tempDirs(t);
  const socket = join(dirs.dataDir, 'ckpt.sock');
  const d = ipcDaemon(dirs, socket);
  defer(t, () => void d.child.kill('SIGKILL'));
  const ready = await waitFor(
    'the ready message',
    () => d.messages.find((m) => (m as { kind?: string }).kind === 'ready'),
    { timeoutMs: 60_000 },
  );
  assert.deepEqual((ready as { socket: string }).socket, socket);
  assert.ok((ready as { peer: { port: number } }).peer.port > 0);
  d.child.send('hello');
  d.child.send({
    kind: 'configure',
    jobId: '../escape',
    l3Root: '/x',
    replicaPeer: null,
    peers: [],
  });
  d.child.send({
    kind: 'register',
    jobId: 'j-ipc',
    rank: 5,
    registration: { worldSize: 8, localRanks: [4] },
  });
  d.child.send({
    kind: 'register',
    jobId: 'j-ipc',
    rank: 4,
    registration: { worldSize: 8, localRanks: [4, 5] },
  });
  await waitFor('the registration to be answered', () =>
    d.messages.some((m) => (m as { kind?: string }).kind === 'registered'),
  );
  const { jobs } = (await call(socket, 'GET', '/v1/status')).json as {
    jobs: { job: string; worldSize: number; localRanks: number[] }[];
  };
  assert.deepEqual(
    jobs.map((j) => [j.job, j.worldSize, j.localRanks]),
    [['j-ipc', 8, [4, 5]]],
  );
  // A registration the daemon took tells the parent, to replay after a restart.
  assert.deepEqual(
    d.messages.filter((m) => (m as { kind?: string }).kind === 'registered'),
    [
      {
        kind: 'registered',
        jobId: 'j-ipc',
        rank: 4,
        registration: { worldSize: 8, localRanks: [4, 5] },
      },
    ],
  );
  assert.equal(
    d.output.match(/ignoring a message from the agent this daemon does not understand/g)?.length,
    2,
    d.output,
  );
  assert.match(
    d.output,
    /rank 5 registers but is not in localRanks.*a message from the agent failed/,
  );
  d.child.disconnect();
  assert.deepEqual(await d.exit, { code: 0, signal: null });
});

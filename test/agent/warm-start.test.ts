// Warm starts (issue 14, faster in-place recovery): once a `<python> script.py` rank trains, the
// agent starts an interpreter for its next attempt that imports torch and waits. A relaunch
// with the same launch runs in it, with exactly the argv, environment and working directory a
// cold start has; any other launch starts cold and the warm interpreter goes away.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { FakeControlPlane, waitFor } from './fake-control-plane.ts';
import { alive, defer, launchCommand, python, startAgent, tempDirs } from './helpers.ts';

// Records what it was started with, reports a step (the agent then starts its next attempt
// warm), and trains on (sleeps) until the next launch stops it.
const recorder = `
import json, os, socket, sys, time
warm = "torch" in sys.modules
record = {
    "argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0], "env": dict(os.environ),
    "warm": warm, "pid": os.getpid(), "name": __name__, "file": __file__,
    "comm": open("/proc/self/comm").read().strip(),
}
with open(os.path.join(os.environ["OUT_DIR"], "attempt-%s.json" % os.environ["CUBE_ATTEMPT"]), "w") as f:
    json.dump(record, f)
body = json.dumps({"jobId": os.environ["CUBE_JOB_ID"], "rank": int(os.environ["RANK"]), "step": 1}).encode()
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["CUBE_AGENT_SOCKET"])
s.sendall(b"POST /v1/progress HTTP/1.1\\r\\nhost: agent\\r\\ncontent-type: application/json\\r\\n"
          + b"content-length: %d\\r\\nconnection: close\\r\\n\\r\\n" % len(body) + body)
s.recv(1000)
s.close()
time.sleep(300)
`;

interface Record {
  argv: string[];
  cwd: string;
  path0: string;
  env: { [key: string]: string };
  warm: boolean;
  pid: number;
  name: string;
  file: string;
  comm: string;
}

/** The pid of the warm interpreter waiting for `jobId`'s next attempt, if one runs. */
function waitingWarm(jobId: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'cube-warm') continue;
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (env.includes(`CUBE_JOB_ID=${jobId}`) && alive(Number(entry))) return Number(entry);
    } catch {
      // gone, or not ours
    }
  }
  return undefined;
}

/** A real agent on a fake control plane, the recorder script, and the folder it records into. */
async function agentWithRecorder(t: TestContext) {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const dirs = tempDirs(t);
  const agent = await startAgent(t, cp, dirs);
  const script = join(dirs.dataDir, 'recorder.py');
  writeFileSync(script, recorder);
  const out = join(dirs.dataDir, 'out');
  mkdirSync(out);
  return { cp, dirs, agent, script, out };
}

test('a relaunch runs in the warm interpreter with exactly the argv, env and cwd of a cold start; a different launch starts cold', async (t) => {
  const { cp, dirs, agent, script, out } = await agentWithRecorder(t);
  const read = (attempt: number): Record =>
    JSON.parse(readFileSync(join(out, `attempt-${attempt}.json`), 'utf8')) as Record;
  const launch = (attempt: number, masterPort: number, myVar: string): void =>
    cp.queue(
      agent.nodeId ?? '',
      launchCommand('j-warm', [python, script, 'a b', '--flag=1'], {
        ranks: 1,
        attempt,
        masterPort,
        env: { MY_VAR: myVar, OUT_DIR: out },
        l3Path: dirs.l3,
      }),
    );

  launch(0, 29001, 'x');
  await waitFor('attempt 0 to run', () => existsSync(join(out, 'attempt-0.json')), {
    timeoutMs: 30_000,
  });
  const warmPid = await waitFor('a warm interpreter for attempt 1', () => waitingWarm('j-warm'), {
    timeoutMs: 60_000,
  });

  launch(1, 29002, 'x');
  await waitFor('attempt 1 to run', () => existsSync(join(out, 'attempt-1.json')), {
    timeoutMs: 60_000,
  });
  const cold = read(0);
  const warm = read(1);
  assert.equal(cold.warm, false, 'attempt 0 started cold');
  assert.equal(warm.warm, true, 'attempt 1 found torch imported');
  assert.equal(warm.pid, warmPid, 'attempt 1 runs in the warm interpreter');
  assert.deepEqual(warm.argv, cold.argv);
  assert.deepEqual(warm.argv, [script, 'a b', '--flag=1']);
  assert.equal(warm.cwd, cold.cwd);
  assert.equal(warm.path0, cold.path0);
  assert.equal(warm.name, '__main__');
  assert.equal(warm.file, cold.file);
  assert.equal(warm.comm, cold.comm, 'named as a cold start is, not cube-warm');
  assert.deepEqual(warm.env, { ...cold.env, MASTER_PORT: '29002', CUBE_ATTEMPT: '1' });

  // Attempt 1 trains: an interpreter for attempt 2 waits. Attempt 2 comes with another
  // environment, so it starts cold and that interpreter is told to go.
  const warm2 = await waitFor('a warm interpreter for attempt 2', () => waitingWarm('j-warm'), {
    timeoutMs: 60_000,
  });
  launch(2, 29003, 'y');
  await waitFor('attempt 2 to run', () => existsSync(join(out, 'attempt-2.json')), {
    timeoutMs: 60_000,
  });
  const changed = read(2);
  assert.equal(changed.warm, false, 'a different launch starts cold');
  assert.notEqual(changed.pid, warm2);
  assert.equal(changed.env.MY_VAR, 'y');
  await waitFor('the unused warm interpreter to exit', () => !alive(warm2), { timeoutMs: 10_000 });
  // The warm-started attempt 1 was stopped for attempt 2 and reported like any rank.
  await waitFor('attempt 1 exit', () =>
    cp.eventsOf('rank-exited').find((e) => e.jobId === 'j-warm' && e.attempt === 1),
  );
});

test('a job with CUBE_WARM_START=0 gets no warm interpreter', async (t) => {
  const { cp, dirs, agent, script, out } = await agentWithRecorder(t);
  cp.queue(
    agent.nodeId ?? '',
    launchCommand('j-cold', [python, script], {
      ranks: 1,
      env: { OUT_DIR: out, CUBE_WARM_START: '0' },
      l3Path: dirs.l3,
    }),
  );
  await waitFor('the rank to run', () => existsSync(join(out, 'attempt-0.json')), {
    timeoutMs: 30_000,
  });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(waitingWarm('j-cold'), undefined);
});

/** POSTs `body` to the agent's Unix socket and returns the status and the parsed answer. */
function postToAgentSocket(
  socketPath: string,
  path: string,
  body: unknown,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(
      {
        socketPath,
        path,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

test('a warm request with a token the agent never issued is told to exit, and learns nothing of any launch', async (t) => {
  const { cp, dirs, agent, script, out } = await agentWithRecorder(t);
  // A job whose next attempt waits warm: its launch (argv, environment with the peer keys) is
  // what a guessed token must not reveal.
  cp.queue(
    agent.nodeId ?? '',
    launchCommand('j-guess', [python, script], {
      ranks: 1,
      env: { OUT_DIR: out, SECRET_LIKE: 'not-for-strangers' },
      l3Path: dirs.l3,
    }),
  );
  await waitFor('a warm interpreter', () => waitingWarm('j-guess'), { timeoutMs: 60_000 });
  const socketPath = join(dirs.dataDir, 'agent.sock');
  const guessed = await postToAgentSocket(socketPath, '/v1/warm', { token: 'ab'.repeat(16) });
  assert.equal(guessed.status, 200);
  assert.deepEqual(guessed.body, { exit: true });
  const malformed = await postToAgentSocket(socketPath, '/v1/warm', { token: '../../x' });
  assert.equal(malformed.status, 400);
  assert.ok(!JSON.stringify(malformed.body).includes('not-for-strangers'));
  // The real warm interpreter is still there, waiting for its launch.
  assert.ok(waitingWarm('j-guess') !== undefined);
});

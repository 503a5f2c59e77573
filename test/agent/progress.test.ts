import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { FakeControlPlane } from './fake-control-plane.ts';
import { defer, python, repoRoot, startAgent, tempDirs } from './helpers.ts';

function runPython(
  code: string,
  env: Record<string, string>,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(python, ['-c', code], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 30_000,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      PYTHONPATH: join(repoRoot, 'python'),
      ...env,
    },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// `import cube` pulls in torch (seconds); these tests load the package without its __init__.
const importProgress = [
  'import sys, types',
  'pkg = types.ModuleType("cube"); pkg.__path__ = ["python/cube"]; sys.modules["cube"] = pkg',
  'from cube.progress import report_progress',
].join('\n');

test('report_progress does nothing without CUBE_AGENT_SOCKET and never raises when the agent is gone', () => {
  const none = runPython(`${importProgress}\nreport_progress(1, loss=2.5)\nprint("ok")`, {});
  assert.equal(none.stdout.trim(), 'ok');
  assert.equal(none.stderr, '');
  const gone = runPython(
    `${importProgress}\nfor s in range(3): report_progress(s, loss=float("nan"), tokens_per_s=None)\nprint("ok")`,
    { CUBE_AGENT_SOCKET: '/nonexistent/agent.sock', CUBE_JOB_ID: 'j', RANK: '0' },
  );
  assert.equal(gone.status, 0);
  assert.equal(gone.stdout.trim(), 'ok');
  assert.equal(
    gone.stderr.match(/progress report to the agent/g)?.length,
    1,
    `logged once: ${gone.stderr}`,
  );
});

test('the agent socket takes progress and restore reports for its ranks and refuses unknown ones; the daemon API has its own socket', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const agent = await startAgent(t, cp, tempDirs(t));
  const post = (
    path: string,
    body?: unknown,
    socketPath = agent.socketPath,
  ): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath,
          path,
          method: body === undefined ? 'GET' : 'POST',
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  const unknown = await post('/v1/progress', {
    jobId: 'j-x',
    rank: 0,
    step: 1,
    loss: 1.5,
    tokensPerS: null,
  });
  assert.equal(unknown.status, 404);
  assert.match(unknown.text, /UNKNOWN_ID/);
  const bad = await post('/v1/progress', { jobId: 'j-x', rank: -1, step: 1 });
  assert.equal(bad.status, 400);
  assert.equal((await post('/v1/status')).status, 404, 'the agent socket has no daemon API');
  const status = await post('/v1/status', undefined, agent.ckptSocketPath);
  assert.equal(status.status, 200);
  assert.equal((JSON.parse(status.text) as { node: string }).node, 'node-a');
  // A report from a real rank goes through the Python client.
  const script = `${importProgress}, report_restored\nreport_restored(2, "L2")\nreport_progress(3, loss=1.25, tokens_per_s=100, step_time_s=0.5)\nprint("sent")`;
  cp.queue(agent.nodeId ?? '', {
    kind: 'launch',
    jobId: 'j-py',
    attempt: 0,
    ranks: [{ rank: 0, localRank: 0 }],
    worldSize: 1,
    localWorldSize: 1,
    masterAddr: '127.0.0.1',
    masterPort: 29400,
    command: [python, '-c', script],
    workingDir: repoRoot,
  });
  const { waitFor } = await import('./fake-control-plane.ts');
  const progress = await waitFor('the progress event', () => cp.eventsOf('progress')[0]);
  assert.deepEqual(progress, {
    kind: 'progress',
    jobId: 'j-py',
    attempt: 0,
    rank: 0,
    step: 3,
    loss: 1.25,
    tokensPerS: 100,
    stepTimeS: 0.5,
  });
  assert.deepEqual(cp.eventsOf('restored'), [
    { kind: 'restored', jobId: 'j-py', attempt: 0, rank: 0, step: 2, level: 'L2' },
  ]);
  const badLevel = await post('/v1/restored', { jobId: 'j-py', rank: 0, step: 1, level: 'L4' });
  assert.equal(badLevel.status, 400);
});

// The control plane's side of authenticated checkpoint peers (issue 13, finding 2): every
// launch gives each node of the job fresh per-attempt keys and the grants of its placement,
// derived from a master key kept 0600 in the data directory.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { launchCommandSchema, type LaunchCommand } from '../../src/agent/protocol.ts';
import { CheckpointDaemon, PeerClient, type DaemonLog } from '../../src/ckpt/daemon/index.ts';
import { ControlPlane } from '../../src/control/control-plane.ts';

const quiet: DaemonLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function call(
  cp: ControlPlane,
  method: string,
  path: string,
  body: unknown,
  token: string,
): Promise<Record<string, unknown>> {
  const response = await fetch(`${cp.url}/api/v1${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as Record<string, unknown>;
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

const device = { index: 0, kind: 'cpu', model: 'cpu', memoryBytes: 1 << 30, health: 'ok' };
const health = { probes: [], devices: [device], freeBytes: { l1: 1 << 30, l3: 1 << 30 } };

/** Joins node `name` (on its own server) and returns its id and credential. */
async function joinNode(
  cp: ControlPlane,
  name: string,
  server: string,
  peerPort: number,
): Promise<{ id: string; credential: string }> {
  const joined = await call(
    cp,
    'POST',
    '/agents/join',
    {
      joinToken: cp.tokens.joinToken,
      name,
      labels: { server, superNode: 'sn0' },
      devices: [device],
      hostMemoryBytes: 1 << 34,
      ckpt: { peerPort },
      host: '127.0.0.1',
    },
    cp.tokens.joinToken,
  );
  return { id: String(joined.nodeId), credential: String(joined.credential) };
}

async function launches(
  cp: ControlPlane,
  node: { id: string; credential: string },
): Promise<LaunchCommand[]> {
  const reply = await call(
    cp,
    'POST',
    `/agents/${node.id}/heartbeat`,
    { at: new Date().toISOString(), health, ranks: [] },
    node.credential,
  );
  return (reply.commands as unknown[])
    .map((c) => launchCommandSchema.safeParse(c))
    .filter((p) => p.success)
    .map((p) => p.data);
}

test('a launch gives each node keys that open its peers for this job attempt, with grants of its placement, from a master key kept 0600', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cube-peer-access-'));
  const daemons: CheckpointDaemon[] = [];
  const mk = async (node: string): Promise<CheckpointDaemon> => {
    const d = new CheckpointDaemon({
      node,
      l1Root: join(dataDir, node, 'L1'),
      l2Root: join(dataDir, node, 'L2'),
      listen: { host: '127.0.0.1', port: 0 },
      log: quiet,
    });
    await d.start();
    daemons.push(d);
    return d;
  };
  let cp = await ControlPlane.start({ dataDir, heartbeatTimeoutMs: 600_000 });
  t.after(async () => {
    for (const d of daemons) await d.stop();
    await cp.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const keyFile = join(dataDir, 'peer-master.key');
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  const master = readFileSync(keyFile, 'utf8');

  const [da, db] = [await mk('node-a'), await mk('node-b')];
  const a = await joinNode(cp, 'node-a', 's0', da.address.port);
  const b = await joinNode(cp, 'node-b', 's1', db.address.port);
  await launches(cp, a);
  await launches(cp, b);
  await call(
    cp,
    'POST',
    '/jobs',
    {
      name: 'two-nodes',
      command: ['.venv/bin/python', '-c', 'pass'],
      ranks: { nodes: 2, devicesPerNode: 1 },
      deviceType: 'cpu',
    },
    cp.tokens.apiToken,
  );
  await cp.orchestrator.tick();
  const [la] = await launches(cp, a);
  const [lb] = await launches(cp, b);
  assert.ok(la !== undefined && lb !== undefined);
  const accessA = la.checkpoint.peerAccess;
  const accessB = lb.checkpoint.peerAccess;
  assert.ok(accessA !== undefined && accessB !== undefined);
  assert.equal(accessA.attempt, la.attempt);
  const rankOf = (l: LaunchCommand): number => l.ranks[0]?.rank ?? -1;
  // Each is the other's replica peer (different servers): it may write and read the other's rank.
  assert.deepEqual(accessB.incoming, [
    {
      node: 'node-a',
      key: accessA.outgoing[0]?.key,
      writeRanks: [rankOf(la)],
      readRanks: [rankOf(la)],
    },
  ]);
  assert.equal(accessA.incoming[0]?.key, accessB.outgoing[0]?.key);
  assert.notEqual(accessA.outgoing[0]?.key, accessB.outgoing[0]?.key, 'a key per direction');

  // The keys work against real daemons, each with only its own node's access.
  da.setPeerAccess(la.jobId, accessA);
  db.setPeerAccess(lb.jobId, accessB);
  const key = accessA.outgoing.find((o) => o.node === 'node-b')?.key ?? '';
  const client = new PeerClient(
    { node: 'node-b', host: '127.0.0.1', port: db.address.port },
    { self: 'node-a', credential: () => ({ attempt: accessA.attempt, key }) },
  );
  t.after(() => client.close());
  assert.deepEqual(await client.list(la.jobId), []);
  const other = new PeerClient(
    { node: 'node-b', host: '127.0.0.1', port: db.address.port },
    { self: 'node-a', credential: () => ({ attempt: accessA.attempt, key }), behindWaitMs: 0 },
  );
  t.after(() => other.close());
  await assert.rejects(other.list('j-someone-else'), /no peer access for job j-someone-else/);

  // A restarted control plane keeps its master key: keys it gave out stay valid.
  await cp.stop();
  cp = await ControlPlane.start({ dataDir, heartbeatTimeoutMs: 600_000 });
  assert.equal(readFileSync(keyFile, 'utf8'), master);
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
});

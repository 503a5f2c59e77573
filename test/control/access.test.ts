// Issue 13, finding 1 and "deny by default": every route declares who may call it, one hook
// enforces it after routing, and the tricks that got past the old URL-prefix check (an encoded
// path, an absolute-form request line) now get 401. Roles, ownership, revocation and stream
// tickets, against a real control plane over real HTTP.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { describeAccess } from '../../src/control/server/access.ts';
import { StreamTickets } from '../../src/control/server/stream-tickets.ts';

let dataDir: string;
let cp: ControlPlane;
const tokens: Record<'user' | 'user2' | 'viewer' | 'metrics', string> = {
  user: '',
  user2: '',
  viewer: '',
  metrics: '',
};
let nodeId = '';
let nodeCredential = '';

async function call(
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; raw?: boolean } = {},
): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const token = options.token === undefined ? cp.tokens.apiToken : options.token;
  const response = await fetch(`${cp.url}${options.raw === true ? '' : '/api/v1'}${path}`, {
    method,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON (metrics, logs, the dashboard)
  }
  return { status: response.status, json, text };
}

/** Sends `request` as raw bytes and answers the status code of the reply. */
function rawRequest(request: string): Promise<number> {
  const { port } = new URL(cp.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(request));
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      reply += chunk;
      const match = /^HTTP\/1\.1 (\d{3})/.exec(reply);
      if (match !== null) {
        socket.destroy();
        resolve(Number(match[1]));
      }
    });
    socket.on('error', reject);
    socket.on('end', () => reject(new Error(`no status line in ${JSON.stringify(reply)}`)));
  });
}

const spec = {
  name: 'access',
  command: ['.venv/bin/python', '-c', 'pass'],
  ranks: { nodes: 1, devicesPerNode: 1 },
  deviceType: 'cpu',
};

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cube-access-'));
  // Fault injection stays off (the default): the refusal is part of what is tested.
  cp = await ControlPlane.start({ dataDir, heartbeatTimeoutMs: 600_000 });
  for (const [name, role] of [
    ['user', 'user'],
    ['user2', 'user'],
    ['viewer', 'viewer'],
    ['metrics', 'metrics'],
  ] as const) {
    const created = await call('POST', '/tokens', { body: { name, role } });
    assert.equal(created.status, 201);
    tokens[name] = String(created.json.token);
  }
  const joined = await call('POST', '/agents/join', {
    token: null,
    body: {
      joinToken: cp.tokens.joinToken,
      name: 'victim-node',
      devices: [{ index: 0, kind: 'cpu', model: 'cpu', memoryBytes: 2 ** 30, health: 'ok' }],
      hostMemoryBytes: 2 ** 34,
    },
  });
  assert.equal(joined.status, 200);
  nodeId = String(joined.json.nodeId);
  nodeCredential = String(joined.json.credential);
});

after(async () => {
  await cp.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

// The rule of every route, written out: a new route must be added here with its rule.
const expectedRules: Record<string, string> = {
  'GET /metrics': 'metrics',
  'GET /api/v1/openapi.json': 'public',
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'POST /api/v1/agents/join': 'join',
  'POST /api/v1/agents/:nodeId/heartbeat': 'node',
  'POST /api/v1/agents/:nodeId/events': 'node',
  'POST /api/v1/agents/:nodeId/logs': 'node',
  'POST /api/v1/jobs': 'user',
  'GET /api/v1/jobs': 'viewer',
  'GET /api/v1/jobs/:id': 'viewer',
  'POST /api/v1/jobs/:id/cancel': 'user',
  'GET /api/v1/jobs/:id/events': 'viewer',
  'GET /api/v1/jobs/:id/progress': 'viewer',
  'GET /api/v1/jobs/:id/logs': 'viewer',
  'GET /api/v1/jobs/:id/series': 'viewer',
  'GET /api/v1/progress/latest': 'viewer',
  'GET /api/v1/nodes': 'viewer',
  'GET /api/v1/heartbeats': 'viewer',
  'POST /api/v1/nodes/:id/cordon': 'admin',
  'POST /api/v1/nodes/:id/uncordon': 'admin',
  'POST /api/v1/nodes/:id/faults': 'admin',
  'GET /api/v1/events': 'viewer',
  'GET /api/v1/stream': 'viewer+ticket',
  'POST /api/v1/stream-tickets': 'viewer',
  'POST /api/v1/tokens': 'admin',
  'GET /api/v1/tokens': 'admin',
  'DELETE /api/v1/tokens/:id': 'admin',
  'GET /api/v1/plan/options': 'viewer',
  'POST /api/v1/plan': 'user',
  'POST /api/v1/simulate': 'user',
  'GET /*': 'public',
};

test('every registered route has exactly the access rule of the expected table', () => {
  const seen = new Map<string, string>();
  for (const r of cp.routes()) {
    // Fastify's automatic HEAD routes carry their GET route's rule.
    const key = `${r.method === 'HEAD' ? 'GET' : r.method} ${r.url}`;
    const rule = describeAccess(r.access);
    const before = seen.get(key);
    if (before !== undefined) assert.equal(rule, before, `${r.method} ${r.url}`);
    seen.set(key, rule);
  }
  assert.deepEqual(
    Object.fromEntries([...seen].sort()),
    Object.fromEntries(Object.entries(expectedRules).sort()),
  );
});

test('every route that is not public refuses a caller without a credential (401) and a too weak one (403)', async () => {
  const weaker: Record<string, string | null> = {
    viewer: tokens.metrics,
    'viewer+ticket': tokens.metrics,
    user: tokens.viewer,
    admin: tokens.user,
    metrics: null,
    node: null,
    join: null,
  };
  for (const [key, rule] of Object.entries(expectedRules)) {
    if (rule === 'public') continue;
    const [method = 'GET', pattern = ''] = key.split(' ');
    const path = pattern.replace(':nodeId', nodeId).replace(':id', 'j-aaaaaaaa');
    const body =
      method === 'GET'
        ? undefined
        : rule === 'join'
          ? { joinToken: 'wrong', name: 'x', devices: [], hostMemoryBytes: 1 }
          : {};
    const anonymous = await call(method, path, { token: null, body, raw: true });
    assert.equal(anonymous.status, 401, `${key} without a credential: ${anonymous.text}`);
    if (rule === 'node') {
      // An API token (even the admin's) is not a node credential.
      const admin = await call(method, path, { body, raw: true });
      assert.equal(admin.status, 401, `${key} with an API token`);
    }
    const weak = weaker[rule];
    if (weak === null || weak === undefined) continue;
    const refused = await call(method, path, { token: weak, body, raw: true });
    assert.equal(refused.status, 403, `${key} with a weaker role: ${refused.text}`);
  }
});

test('an encoded path, an absolute-form request line, the stream, cordon and faults get 401 without a token, and no command reaches an agent', async () => {
  assert.equal((await call('GET', '/%61pi/v1/jobs', { token: null, raw: true })).status, 401);
  const posted = await call('POST', '/%61pi/v1/jobs', { token: null, body: spec, raw: true });
  assert.equal(posted.status, 401);
  assert.equal(
    await rawRequest(
      `GET http://127.0.0.1/api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    ),
    401,
  );
  const body = JSON.stringify(spec);
  assert.equal(
    await rawRequest(
      `POST http://127.0.0.1/%61pi/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    ),
    401,
  );
  assert.equal((await call('GET', '/stream', { token: null })).status, 401);
  assert.equal((await call('GET', '/%61pi/v1/stream', { token: null, raw: true })).status, 401);
  assert.equal((await call('POST', `/nodes/${nodeId}/cordon`, { token: null })).status, 401);
  assert.equal(
    (await call('POST', `/nodes/${nodeId}/faults`, { token: null, body: { kind: 'kill-node' } }))
      .status,
    401,
  );
  assert.equal(
    (await call('GET', '/jobs?token=' + cp.tokens.apiToken, { token: null })).status,
    401,
  );
  assert.deepEqual(await cp.store.listJobs(), []);
  assert.equal((await cp.store.getNode(nodeId))?.state, 'ready');
  await cp.orchestrator.tick();
  const heartbeat = await fetch(`${cp.url}/api/v1/agents/${nodeId}/heartbeat`, {
    method: 'POST',
    headers: { authorization: `Bearer ${nodeCredential}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ranks: [] }),
  });
  assert.deepEqual(await heartbeat.json(), { commands: [] });
});

test('fault injection is refused, naming the flag, unless the server allows it', async () => {
  const refused = await call('POST', `/nodes/${nodeId}/faults`, { body: { kind: 'kill-node' } });
  assert.equal(refused.status, 403);
  assert.match(refused.text, /--allow-fault-injection/);
});

test('a user sees and cancels only its own jobs; a viewer reads everything and changes nothing', async () => {
  const mine = await call('POST', '/jobs', { token: tokens.user, body: { ...spec, name: 'mine' } });
  assert.equal(mine.status, 201);
  const id = String(mine.json.id);
  const theirs = await call('POST', '/jobs', {
    token: tokens.user2,
    body: { ...spec, name: 'theirs' },
  });
  const theirId = String(theirs.json.id);
  const listed = (await call('GET', '/jobs', { token: tokens.user })).json.jobs as { id: string }[];
  assert.deepEqual(
    listed.map((j) => j.id),
    [id],
  );
  assert.equal((await call('GET', `/jobs/${theirId}`, { token: tokens.user })).status, 404);
  assert.equal((await call('GET', `/jobs/${theirId}/events`, { token: tokens.user })).status, 404);
  assert.equal((await call('GET', `/jobs/${theirId}/logs`, { token: tokens.user })).status, 404);
  assert.equal((await call('POST', `/jobs/${theirId}/cancel`, { token: tokens.user })).status, 404);
  assert.equal((await cp.store.getJob(theirId))?.state, 'queued');
  const events = (await call('GET', '/events', { token: tokens.user })).json.events as {
    jobId?: string;
  }[];
  assert.ok(events.every((e) => e.jobId === undefined || e.jobId === id));
  assert.ok(events.some((e) => e.jobId === id));

  const all = (await call('GET', '/jobs', { token: tokens.viewer })).json.jobs as { id: string }[];
  assert.deepEqual(all.map((j) => j.id).sort(), [id, theirId].sort());
  assert.equal((await call('POST', '/jobs', { token: tokens.viewer, body: spec })).status, 403);
  assert.equal((await call('POST', `/jobs/${id}/cancel`, { token: tokens.viewer })).status, 403);
  assert.equal((await call('POST', `/jobs/${id}/cancel`, { token: tokens.user })).status, 200);
  assert.equal((await call('GET', '/jobs', { token: tokens.metrics })).status, 403);
  const metrics = await call('GET', '/metrics', { token: tokens.metrics, raw: true });
  assert.equal(metrics.status, 200);
  assert.match(metrics.text, /cube_jobs/);
});

test('tokens are listed without their secrets, and a revoked token fails at once', async () => {
  const created = await call('POST', '/tokens', { body: { name: 'short-lived', role: 'viewer' } });
  const secret = String(created.json.token);
  assert.equal((await call('GET', '/nodes', { token: secret })).status, 200);
  const listed = await call('GET', '/tokens');
  assert.ok(!listed.text.includes(secret));
  assert.ok(!listed.text.includes(cp.tokens.apiToken));
  assert.ok(
    (listed.json.tokens as { name: string; role: string }[]).some(
      (t) => t.name === 'short-lived' && t.role === 'viewer',
    ),
  );
  const revoked = await call('DELETE', '/tokens/short-lived');
  assert.equal(revoked.status, 200);
  assert.equal(typeof revoked.json.revokedAt, 'number');
  assert.equal((await call('GET', '/nodes', { token: secret })).status, 401);
  assert.equal((await call('DELETE', '/tokens/no-such-token')).status, 404);
  assert.equal((await call('POST', '/tokens', { body: { name: 'x', role: 'root' } })).status, 400);
});

async function firstChunk(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; text: string }> {
  const controller = new AbortController();
  const response = await fetch(url, { ...init, signal: controller.signal });
  let text = '';
  if (response.ok && response.body !== null) {
    const reader = response.body.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    const chunk = await reader.read();
    text = new TextDecoder().decode(chunk.value);
  }
  controller.abort();
  return { status: response.status, text };
}

test('the event stream takes a single-use ticket, never a token in the URL', async () => {
  const issued = await call('POST', '/stream-tickets', { token: tokens.viewer });
  assert.equal(issued.status, 201);
  assert.equal(issued.json.expiresInS, 30);
  const url = `${cp.url}/api/v1/stream?after=0&ticket=${String(issued.json.ticket)}`;
  const first = await firstChunk(url);
  assert.equal(first.status, 200);
  assert.match(first.text, /connected/);
  assert.equal((await firstChunk(url)).status, 401);
  assert.equal(
    (await firstChunk(`${cp.url}/api/v1/stream?token=${cp.tokens.apiToken}`)).status,
    401,
  );
  assert.equal((await firstChunk(`${cp.url}/api/v1/stream?ticket=made-up`)).status, 401);
  // A metrics token may not trade itself for a ticket that reads events.
  assert.equal((await call('POST', '/stream-tickets', { token: tokens.metrics })).status, 403);
  // The header works too, for clients that can send one.
  assert.equal(
    (
      await firstChunk(`${cp.url}/api/v1/stream`, {
        headers: { authorization: `Bearer ${tokens.viewer}` },
      })
    ).status,
    200,
  );
});

test('a stream ticket expires after 30 seconds and works only once', () => {
  let now = 1_000_000;
  const tickets = new StreamTickets({ now: () => now });
  const holder = { id: 'tok-x', name: 'x', role: 'viewer' as const, createdAt: 0, revokedAt: null };
  const a = tickets.issue(holder);
  assert.deepEqual(tickets.redeem(a.ticket), { id: 'tok-x' });
  assert.equal(tickets.redeem(a.ticket), null);
  const b = tickets.issue(holder);
  now += 30_001;
  assert.equal(tickets.redeem(b.ticket), null);
});

test('healthz and readyz answer without a token, and are not the dashboard', async () => {
  const health = await call('GET', '/healthz', { token: null, raw: true });
  assert.equal(health.status, 200);
  assert.deepEqual(health.json, { ok: true });
  const ready = await call('GET', '/readyz', { token: null, raw: true });
  assert.equal(ready.status, 200);
  assert.deepEqual(ready.json, { ok: true });
});

test('with --metrics-public, /metrics answers without a token and nothing else opens', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cube-access-metrics-'));
  const open = await ControlPlane.start({ dataDir: dir, metricsPublic: true });
  try {
    assert.equal((await fetch(`${open.url}/metrics`)).status, 200);
    assert.equal((await fetch(`${open.url}/api/v1/jobs`)).status, 401);
  } finally {
    await open.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

// The control plane's REST API against random and mutated requests, on a real server (real
// SQLite, real HTTP): every route read from the server's own OpenAPI document plus the routes
// it hides, with random path parameters, query strings, content types and bodies (JSON, YAML,
// garbage, deep nesting, huge numbers, unicode, YAML alias bombs), with the admin token and
// without. No reply is a 5xx, and the server still answers /healthz and its API afterwards.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, Agent } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { fuzzParams } from './fuzz-config.ts';
import { yamlAliasBomb } from './yaml-bomb.ts';

let dataDir: string;
let cp: ControlPlane;
let port: number;
const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/** Routes as `[METHOD, /path/with/{param}]`, read from the server once it runs. */
let routes: [string, string][] = [];
let node: { nodeId: string; credential: string };

interface Reply {
  status: number;
  contentType: string;
  body: string;
}

/**
 * Sends one raw request (node:http, so paths are sent as given: no URL normalization) and
 * reads the reply; an event stream is cut after its headers.
 */
function send(options: {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        agent,
        method: options.method,
        path: options.path,
        headers: {
          ...options.headers,
          ...(options.body === undefined ? {} : { 'content-length': String(options.body.length) }),
        },
        signal: AbortSignal.timeout(15_000),
      },
      (res) => {
        const contentType = String(res.headers['content-type'] ?? '');
        if (contentType.startsWith('text/event-stream')) {
          res.destroy();
          resolve({ status: res.statusCode ?? 0, contentType, body: '' });
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cube-fuzz-api-'));
  cp = await ControlPlane.start({ dataDir, port: 0 });
  port = Number(new URL(cp.url).port);
  const doc = await send({
    method: 'GET',
    path: '/api/v1/openapi.json',
    headers: { authorization: `Bearer ${cp.tokens.apiToken}` },
  });
  assert.equal(doc.status, 200, doc.body);
  const paths = (JSON.parse(doc.body) as { paths: Record<string, Record<string, unknown>> }).paths;
  for (const [path, operations] of Object.entries(paths))
    for (const method of Object.keys(operations))
      if (['get', 'post', 'put', 'patch', 'delete'].includes(method))
        routes.push([method.toUpperCase(), path]);
  // The routes the document hides: probes, metrics, the document itself, the dashboard.
  routes.push(
    ['GET', '/healthz'],
    ['GET', '/readyz'],
    ['GET', '/metrics'],
    ['GET', '/api/v1/openapi.json'],
    ['GET', '/'],
    ['GET', '/{param}'],
    ['GET', '/api/v1/{param}'],
    ['POST', '/api/v1/{param}'],
  );
  // A joined node, so the agent routes are fuzzed past their credential check too.
  const joined = await send({
    method: 'POST',
    path: '/api/v1/agents/join',
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(
      JSON.stringify({
        joinToken: cp.tokens.joinToken,
        name: 'fuzz-node',
        devices: [{ index: 0, kind: 'cpu', model: 'cpu', memoryBytes: 1 << 30, health: 'ok' }],
        hostMemoryBytes: 1 << 30,
      }),
    ),
  });
  assert.equal(joined.status, 200, joined.body);
  node = JSON.parse(joined.body) as { nodeId: string; credential: string };
  routes = routes.sort(([m1, p1], [m2, p2]) => `${m1} ${p1}`.localeCompare(`${m2} ${p2}`));
  assert.ok(routes.length > 15, `only ${routes.length} routes in the OpenAPI document`);
});

after(async () => {
  agent.destroy();
  await cp.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const goodSpec = {
  name: 'fuzz-job',
  command: ['/bin/true'],
  ranks: { nodes: 1, devicesPerNode: 1 },
  deviceType: 'cpu',
};

/** Path parameter values: ids, traversal, encodings, unicode, huge and empty. */
const paramArb = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom(
    '..',
    '%2e%2e',
    '..%2f..%2fetc%2fpasswd',
    '%00',
    '%ff%fe',
    '%',
    'n-1',
    'j-1',
    'job-1',
    '0',
    '-1',
    '1e999',
    'ü💥',
    'x'.repeat(5000),
    '',
  ),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
);

/** Deep nesting: arrays or objects a few thousand levels deep, as text. */
const deepJsonArb = fc
  .tuple(fc.integer({ min: 100, max: 50_000 }), fc.boolean())
  .map(([depth, objects]) =>
    objects
      ? `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
      : `${'['.repeat(depth)}${']'.repeat(depth)}`,
  );

/** A JSON value with one field of the good spec replaced or a field added. */
const mutatedSpecArb = fc
  .tuple(
    fc.constantFrom(
      'name',
      'command',
      'ranks',
      'deviceType',
      'env',
      'layout',
      'checkpoint',
      'extra',
    ),
    fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.constantFrom(1e308, -1, 2 ** 53 + 1, '', 'ü💥', null, [], {}),
    ),
  )
  .map(([key, value]) => JSON.stringify({ ...goodSpec, [key]: value }));

/** Bodies shaped like the agents' reports, with hostile ids, numbers and text inside. */
const idArb = fc.oneof(
  fc.constantFrom('..', '../..', '.', 'job-1', 'fuzz-job', '', 'a/b', '%2e%2e'),
  fc.string({ maxLength: 10 }),
);
const countArb = fc.oneof(
  fc.nat(5),
  fc.constantFrom(-1, 1.5, 2 ** 31, Number.MAX_SAFE_INTEGER, 1e300),
);
const agentBodyArb = fc.oneof(
  fc
    .array(
      fc.record(
        {
          kind: fc.constantFrom(
            'rank-exited',
            'progress',
            'checkpoint-committed',
            'restored',
            'probe-failed',
            'x',
          ),
          jobId: idArb,
          attempt: countArb,
          rank: countArb,
          step: countArb,
          exitCode: fc.oneof(fc.integer(), fc.constant(null)),
          level: fc.constantFrom('L1', 'L2', 'L3', 'L9'),
          name: fc.string({ maxLength: 8 }),
          loss: fc.oneof(fc.double(), fc.constant(null)),
        },
        { requiredKeys: ['kind'] },
      ),
      { maxLength: 4 },
    )
    .map((events) => JSON.stringify({ events })),
  fc
    .array(
      fc.record({
        jobId: idArb,
        attempt: countArb,
        rank: countArb,
        state: fc.constantFrom('starting', 'running', 'exited', 'bogus'),
        pid: fc.oneof(fc.integer(), fc.constant(null)),
        progress: fc.option(fc.record({ step: countArb, at: fc.oneof(fc.double(), fc.string()) })),
      }),
      { maxLength: 3 },
    )
    .map((ranks) => JSON.stringify({ health: { devices: [] }, ranks })),
  fc
    .record({
      jobId: idArb,
      attempt: countArb,
      rank: countArb,
      stream: fc.constantFrom('stdout', 'stderr', 'stdin'),
      text: fc.oneof(fc.string(), fc.constant('x'.repeat(100_000))),
    })
    .map((logs) => JSON.stringify(logs)),
);

interface Body {
  contentType: string | null;
  text: string | Buffer;
}

const jsonTypes = ['application/json', 'application/json; charset=utf-8', 'application/JSON'];
const bodyArb: fc.Arbitrary<Body> = fc.oneof(
  fc.record({
    contentType: fc.constantFrom(...jsonTypes),
    text: fc.oneof(
      fc.json({ maxDepth: 4 }),
      mutatedSpecArb,
      agentBodyArb,
      deepJsonArb,
      fc.constantFrom(
        JSON.stringify(goodSpec),
        '1e999',
        '-0',
        '{"__proto__":{"x":1}}',
        '{"constructor":{"prototype":{"x":1}}}',
        '{"a":1,"a":2}',
        '"\\ud800"',
        '',
        '{',
        'null',
        JSON.stringify({ yaml: yamlAliasBomb() }),
      ),
      fc.string(),
    ),
  }),
  fc.record({
    contentType: fc.constantFrom('application/yaml', 'text/yaml'),
    text: fc.oneof(
      fc.constantFrom(
        yamlAliasBomb(),
        yamlAliasBomb(30, 2),
        'name: fuzz\ncommand: [/bin/true]\nranks: {nodes: 1, devicesPerNode: 1}\ndeviceType: cpu\n',
        '!!binary aGVsbG8=',
        '? [a]\n: b\n',
        `${'['.repeat(3000)}${']'.repeat(3000)}`,
        'a: *nope\n',
        '- 1e99999',
      ),
      fc.string(),
    ),
  }),
  fc.record({
    contentType: fc.oneof(
      fc.constantFrom(
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/octet-stream',
        'application/json; charset=utf-16',
        'application/json; charset=bogus',
        ';;;',
        '',
        'application/json, text/yaml',
      ),
      fc.string({ maxLength: 30 }),
    ),
    text: fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
      fc.string(),
      fc.constant(JSON.stringify(goodSpec)),
    ),
  }),
  fc.constant({ contentType: null, text: '' }),
);

// Mostly a valid credential (the admin token, or the joined node's on its own routes), so
// requests get past authentication to the routes' own parsing.
const authArb = fc.oneof(
  { arbitrary: fc.constant('admin'), weight: 5 },
  { arbitrary: fc.constant('node'), weight: 2 },
  { arbitrary: fc.constantFrom('none', 'garbage', 'lowercase-scheme', 'empty'), weight: 3 },
);

/** A query string of random keys and values, some of them the API's own names. */
const queryArb = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom(
          'token',
          'ticket',
          'after',
          'limit',
          'rank',
          'attempt',
          'tail',
          'offset',
          'bytes',
          'stream',
        ),
        fc.string({ maxLength: 6 }),
      ),
      fc.oneof(
        fc.string({ maxLength: 8 }),
        fc.constantFrom('-1', '1e999', '99999999999999999999', 'NaN', ''),
      ),
    ),
    { maxLength: 4 },
  )
  .map((pairs) =>
    pairs.length === 0
      ? ''
      : `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`,
  );

/** Fills `{param}` placeholders; most values are percent-encoded, some raw when sendable. */
function fillPath(template: string, values: string[], raw: boolean): string {
  let i = 0;
  return template.replace(/\{[^}]+\}/g, () => {
    const v = values[i++ % Math.max(1, values.length)] ?? '';
    return raw && /^[\x21-\x7e]*$/.test(v) && !v.includes('?') && !v.includes('#')
      ? v
      : encodeURIComponent(v);
  });
}

test('random requests to every route never get a 5xx, with the admin token or without', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.nat(),
      fc.array(paramArb, { minLength: 1, maxLength: 3 }),
      fc.boolean(),
      queryArb,
      bodyArb,
      authArb,
      fc.boolean(),
      async (pick, params, raw, query, body, auth, otherMethod) => {
        const [routeMethod, template] = routes[pick % routes.length] as [string, string];
        // Now and then the wrong method on a known path: 404 or 405, never a crash.
        const method =
          otherMethod && pick % 7 === 0 ? (routeMethod === 'GET' ? 'POST' : 'GET') : routeMethod;
        // The joined node's own id now and then, so its routes reach their handlers.
        const values = auth === 'node' && pick % 2 === 0 ? [node.nodeId] : params;
        const path = `${fillPath(template, values, raw)}${query}`;
        const headers: Record<string, string> = {};
        const token = cp.tokens.apiToken;
        if (auth === 'admin') headers.authorization = `Bearer ${token}`;
        else if (auth === 'node') headers.authorization = `Bearer ${node.credential}`;
        else if (auth === 'garbage') headers.authorization = `Bearer ${token.slice(0, -2)}zz`;
        else if (auth === 'lowercase-scheme') headers.authorization = `bearer ${token}`;
        else if (auth === 'empty') headers.authorization = '';
        const sendsBody = method !== 'GET' && method !== 'HEAD';
        if (sendsBody && body.contentType !== null) headers['content-type'] = body.contentType;
        const reply = await send({
          method,
          path,
          headers,
          ...(sendsBody ? { body: Buffer.from(body.text) } : {}),
        });
        if (process.env.CUBE_FUZZ_STATS !== undefined)
          process.stderr.write(`STAT ${reply.status} ${method} ${template} ${auth}\n`);
        assert.ok(
          reply.status < 500,
          `${method} ${path} (${auth}, ${body.contentType ?? 'no body'}) got ${reply.status}: ${reply.body.slice(0, 500)}`,
        );
      },
    ),
    fuzzParams(1000, 0.5),
  );
  const health = await send({ method: 'GET', path: '/healthz', headers: {} });
  assert.equal(health.status, 200);
  const jobs = await send({
    method: 'GET',
    path: '/api/v1/jobs',
    headers: { authorization: `Bearer ${cp.tokens.apiToken}` },
  });
  assert.equal(jobs.status, 200, 'the admin token still works after the fuzzing');
});

test('a YAML alias bomb posted as a job is a 400 saying aliases, and the server stays up', async () => {
  for (const [contentType, text] of [
    ['application/yaml', yamlAliasBomb()],
    ['text/yaml', yamlAliasBomb(40, 2)],
    ['application/json', JSON.stringify({ yaml: yamlAliasBomb() })],
  ] as const) {
    const reply = await send({
      method: 'POST',
      path: '/api/v1/jobs',
      headers: { authorization: `Bearer ${cp.tokens.apiToken}`, 'content-type': contentType },
      body: Buffer.from(text),
    });
    assert.equal(reply.status, 400, reply.body);
    const error = (JSON.parse(reply.body) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'INVALID_FILE');
    assert.match(error.message, /aliases/);
  }
  assert.equal((await send({ method: 'GET', path: '/healthz', headers: {} })).status, 200);
});

// schemathesis (PyPI) against the control plane's own OpenAPI document, on a real server: it
// generates requests from each operation's schemas (valid ones, boundary values and invalid
// ones) and fails on any 5xx (`not_a_server_error`). scripts/setup.sh installs it into
// .venv-tools/. `npm test` runs a bounded number of examples per operation under a hard
// wall-clock limit; `npm run fuzz` runs many more.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { fuzzSeed, longFuzz } from './fuzz-config.ts';

const repoRoot = new URL('../..', import.meta.url).pathname;
const schemathesis =
  process.env.CUBE_SCHEMATHESIS ?? join(repoRoot, '.venv-tools', 'bin', 'schemathesis');

/** Examples per operation: a few in `npm test`, CUBE_FUZZ_RUNS / 20 under `npm run fuzz`. */
const examples = longFuzz ? Math.max(20, Math.round(Number(process.env.CUBE_FUZZ_RUNS) / 20)) : 20;
/** The hard bound on the whole run; past it the run is killed and the test fails. */
const wallSeconds = longFuzz ? 560 : 85;

let dataDir: string;
let cp: ControlPlane;
let configFile: string;
/** The credentials the run uses, passed by environment so no file or argument holds them. */
let credentials: Record<string, string>;

async function post(path: string, token: string | null, body: unknown): Promise<unknown> {
  const response = await fetch(`${cp.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  });
  assert.ok(response.ok, `${path}: ${response.status} ${await response.clone().text()}`);
  return response.json();
}

/**
 * Makes data for the operations that need some (a job, a joined node) and writes the
 * schemathesis config: ids drawn from dictionaries of real ones most of the time (so requests
 * reach the handlers), generated ones otherwise; the node's own credential on its routes.
 */
before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cube-fuzz-schemathesis-'));
  cp = await ControlPlane.start({ dataDir, port: 0 });
  const job = (await post('/api/v1/jobs', cp.tokens.apiToken, {
    name: 'schemathesis',
    command: ['/bin/true'],
    ranks: { nodes: 1, devicesPerNode: 1 },
    deviceType: 'cpu',
  })) as { id: string };
  const node = (await post('/api/v1/agents/join', null, {
    joinToken: cp.tokens.joinToken,
    name: 'schemathesis-node',
    devices: [],
    hostMemoryBytes: 1 << 30,
  })) as { nodeId: string; credential: string };
  credentials = {
    CUBE_FUZZ_ADMIN_TOKEN: cp.tokens.apiToken,
    CUBE_FUZZ_NODE_CREDENTIAL: node.credential,
  };
  configFile = join(dataDir, 'schemathesis.toml');
  writeFileSync(
    configFile,
    [
      'headers = { Authorization = "Bearer ${CUBE_FUZZ_ADMIN_TOKEN}" }',
      '',
      '[dictionaries.jobs]',
      `values = [${JSON.stringify(job.id)}]`,
      '[dictionaries.nodes]',
      `values = [${JSON.stringify(node.nodeId)}]`,
      '',
      '[[operations]]',
      "include-path-regex = '^/api/v1/jobs/\\{id\\}'",
      'parameters = { "path.id" = { dictionary = "jobs", probability = 0.7 } }',
      '',
      '[[operations]]',
      "include-path-regex = '^/api/v1/nodes/\\{id\\}'",
      'parameters = { "path.id" = { dictionary = "nodes", probability = 0.7 } }',
      '',
      '[[operations]]',
      "include-path-regex = '^/api/v1/agents/\\{nodeId\\}/'",
      'headers = { Authorization = "Bearer ${CUBE_FUZZ_NODE_CREDENTIAL}" }',
      'parameters = { "path.nodeId" = { dictionary = "nodes", probability = 0.8 } }',
      '',
    ].join('\n'),
  );
});

after(async () => {
  await cp.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function run(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    // Never on the shared Hypothesis database: each run starts from the seed alone.
    const child = spawn(schemathesis, args, {
      cwd: dataDir,
      env: { ...process.env, ...credentials, NO_COLOR: '1', PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut });
    });
  });
}

test(
  'schemathesis finds no server error in any operation of the OpenAPI document',
  { timeout: (wallSeconds + 30) * 1000 },
  async () => {
    assert.ok(
      existsSync(schemathesis),
      `${schemathesis} is missing: run scripts/setup.sh (it installs schemathesis into .venv-tools/)`,
    );
    const args = [
      // Output sanitization (on by default) masks the Authorization header in reports.
      '--config-file',
      configFile,
      'run',
      `${cp.url}/api/v1/openapi.json`,
      '--url',
      cp.url,
      '--checks',
      'not_a_server_error',
      '--max-examples',
      String(examples),
      '--seed',
      String(fuzzSeed),
      // One worker: schemathesis 4.32 raises internal errors (Hypothesis flakiness) with more.
      '--workers',
      '1',
      '--phases',
      longFuzz ? 'examples,coverage,fuzzing,stateful' : 'examples,coverage,fuzzing',
      '--generation-database',
      'none',
      '--request-timeout',
      '20',
      // The live event stream never ends by design; the fast-check API fuzzer covers it.
      '--exclude-path',
      '/api/v1/stream',
      '--no-color',
    ];
    const result = await run(args, wallSeconds * 1000);
    if (process.env.CUBE_FUZZ_STATS !== undefined) process.stderr.write(result.output);
    const tail = result.output.slice(-6000);
    assert.ok(!result.timedOut, `schemathesis ran past ${wallSeconds} s:\n${tail}`);
    assert.equal(result.code, 0, `schemathesis reported failures (seed ${fuzzSeed}):\n${tail}`);
    // A run that tested nothing (an empty document, a schema it could not load) is no pass.
    assert.match(result.output, /Tested: [1-9]\d*/, tail);
    assert.match(result.output, /\d+ generated, \d+ passed/, tail);
  },
);

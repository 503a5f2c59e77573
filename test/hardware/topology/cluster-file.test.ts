import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { main } from '../../../src/cli/main.ts';
import { CubeError, type CubeErrorCode } from '../../../src/core/index.ts';
import { createTopology, loadClusterFile, summarizeCluster } from '../../../src/hardware/index.ts';
import { examplePath } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'cube-cluster-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Runs `cube ...` in-process; returns the exit code and what it printed. */
async function cube(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

function failsWith(file: string, code: CubeErrorCode, path: string): CubeError {
  try {
    loadClusterFile(file);
  } catch (error) {
    assert.ok(error instanceof CubeError, String(error));
    assert.equal(error.code, code, error.message);
    assert.equal(error.where.file, file);
    assert.equal(error.where.path, path);
    return error;
  }
  assert.fail(`${file} loaded`);
}

const ok = `name: ok
servers:
  - server: hgx-h100
    count: 2
fabric:
  kind: clos
  tiers:
    - name: leaf
`;

test('an unknown server id is UNKNOWN_ID at its path, with the nearest ids suggested', async () => {
  const file = write('unknown-server.yaml', ok.replace('server: hgx-h100', 'server: hgx-h10'));
  const error = failsWith(file, 'UNKNOWN_ID', 'servers[0].server');
  assert.match(error.hint ?? '', /"hgx-h100"/);
  const r = await cube('cluster', 'show', file);
  assert.equal(r.code, 2);
  assert.match(r.err, /UNKNOWN_ID/);
  assert.match(r.err, /at servers\[0\]\.server/);
  assert.match(r.err, /did you mean "hgx-h100"/);
});

test('a negative count is INVALID_FILE naming the count', async () => {
  const file = write('negative.yaml', ok.replace('count: 2', 'count: -2'));
  const error = failsWith(file, 'INVALID_FILE', 'servers[0].count');
  assert.match(error.message, /servers\[0\]\.count: Too small/);
  const r = await cube('cluster', 'show', file);
  assert.equal(r.code, 2);
  assert.match(r.err, /at servers\[0\]\.count/);
});

test('a missing key is INVALID_FILE naming it', () => {
  const file = write(
    'missing.yaml',
    `name: missing
superNodes:
  - count: 2
    servers: [{ server: br166-oam-8, count: 4 }]
    gbsPerDirection: 128
ocs: { latencyUs: 4, gbsPerCircuit: 50, circuits: [{ between: [sn0, sn1], count: 8 }] }
`,
  );
  failsWith(file, 'INVALID_FILE', 'superNodes[0].latencyUs');
});

test('an OCS matching naming a super-node that does not exist is UNKNOWN_ID at that name', async () => {
  const file = write(
    'bad-ocs.yaml',
    `name: bad-ocs
superNodes:
  - count: 2
    servers: [{ server: br166-oam-8, count: 4 }]
    gbsPerDirection: 128
    latencyUs: 2.5
ocs:
  latencyUs: 4
  gbsPerCircuit: 50
  circuits:
    - { between: [sn0, sn2], count: 8 }
`,
  );
  const error = failsWith(file, 'UNKNOWN_ID', 'ocs.circuits[0].between[1]');
  assert.match(error.message, /unknown super-node "sn2"/);
  assert.deepEqual(error.where.allowed, ['sn0', 'sn1']);
  const r = await cube('cluster', 'show', file);
  assert.equal(r.code, 2);
  assert.match(r.err, /at ocs\.circuits\[0\]\.between\[1\]/);
});

test('a YAML syntax error is FILE_UNREADABLE with the line', async () => {
  const file = write(
    'syntax.yaml',
    'name: broken\nservers:\n  - server: [hgx-h100\n    count: 2\n',
  );
  try {
    loadClusterFile(file);
    assert.fail('loaded');
  } catch (error) {
    assert.ok(error instanceof CubeError);
    assert.equal(error.code, 'FILE_UNREADABLE');
    assert.match(error.where.path ?? '', /^line \d+/);
  }
  const r = await cube('cluster', 'show', file);
  assert.equal(r.code, 2);
  assert.match(r.err, /FILE_UNREADABLE/);
});

test('a bad fabric kind lists the allowed kinds', async () => {
  const file = write('bad-kind.yaml', ok.replace('kind: clos', 'kind: torus'));
  const error = failsWith(file, 'INVALID_FILE', 'fabric.kind');
  assert.deepEqual(error.where.allowed, ['clos', 'rail-optimized']);
  const r = await cube('cluster', 'show', file);
  assert.equal(r.code, 2);
  assert.match(r.err, /allowed: clos, rail-optimized/);
});

test('cross-field rules name the field: oversubscription on the top tier, tiers without group sizes', () => {
  failsWith(
    write(
      'top-oversub.yaml',
      ok.replace('    - name: leaf\n', '    - name: leaf\n      oversubscription: 2\n'),
    ),
    'INVALID_FILE',
    'fabric.tiers[0].oversubscription',
  );
  failsWith(
    write(
      'no-group.yaml',
      ok.replace('    - name: leaf\n', '    - name: leaf\n    - name: spine\n'),
    ),
    'INVALID_FILE',
    'fabric.tiers[0].serversPerGroup',
  );
  failsWith(write('no-fabric.yaml', ok.split('fabric:')[0] ?? ''), 'INVALID_FILE', 'fabric');
});

test('a cluster file may define its own server model for hardware not in the catalog', () => {
  const file = write(
    'inline.json',
    JSON.stringify({
      name: 'inline',
      serverModels: [
        {
          id: 'lab-box-4',
          name: 'Lab box with 4 A100 on PCIe',
          accelerator: 'a100-80g',
          acceleratorsPerServer: 4,
          intraServer: { kind: 'pcie', gbsPerDirection: 32, latencyUs: 3 },
          hostMemoryGiB: 512,
          hostLinkGbsPerDirection: 32,
          nics: { count: 1, gbps: 100, latencyUs: 3 },
        },
      ],
      servers: [
        { server: 'lab-box-4', count: 3 },
        { server: 'hgx-h100', count: 1, accelerators: 4 },
      ],
      fabric: { kind: 'clos', tiers: [{ name: 'leaf' }] },
    }),
  );
  const summary = summarizeCluster(createTopology(loadClusterFile(file)));
  assert.equal(summary.devices, 16);
  assert.equal(
    summary.hierarchy.compact,
    '3 × lab-box-4 (4 × a100-80g, pcie), hgx-h100 (4 of 8 × h100-sxm, switch)',
  );
  // An inline model whose accelerator is unknown is UNKNOWN_ID at its path.
  const bad = write(
    'inline-bad.json',
    JSON.stringify({
      name: 'x',
      serverModels: [
        {
          id: 'b',
          accelerator: 'a100-90g',
          acceleratorsPerServer: 1,
          intraServer: { kind: 'pcie', gbsPerDirection: 1, latencyUs: 1 },
          hostMemoryGiB: 1,
          hostLinkGbsPerDirection: 1,
          nics: { count: 1, gbps: 1, latencyUs: 1 },
        },
      ],
      servers: [{ server: 'b', count: 1 }],
    }),
  );
  failsWith(bad, 'UNKNOWN_ID', 'serverModels[0].accelerator');
});

test('cube cluster show prints the hierarchy, and --json the same as an object', async () => {
  const text = await cube('cluster', 'show', examplePath('supernode-1024'));
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /hierarchy: 4 × super-node\[32 × br166-oam-8 \(8 × br166, full mesh\)\]/);
  assert.match(text.out, /bisection: +3,200 GB\/s per direction/);
  const json = await cube('cluster', 'show', examplePath('lab-hetero'), '--json');
  assert.equal(json.code, 0, json.err);
  const summary = JSON.parse(json.out) as {
    devices: number;
    accelerators: { id: string; devices: number }[];
  };
  assert.equal(summary.devices, 48);
  assert.deepEqual(
    summary.accelerators.map((a) => [a.id, a.devices]),
    [
      ['a100-80g', 32],
      ['mi300x', 16],
    ],
  );
});

test('cube cluster show --accelerator h100-sxm --gpus 64 shows 8 hgx-h100 servers', async () => {
  const r = await cube('cluster', 'show', '--accelerator', 'h100-sxm', '--gpus', '64', '--json');
  assert.equal(r.code, 0, r.err);
  const summary = JSON.parse(r.out) as {
    servers: number;
    serverModels: { id: string; servers: number }[];
  };
  assert.equal(summary.servers, 8);
  assert.deepEqual(
    summary.serverModels.map((m) => [m.id, m.servers]),
    [['hgx-h100', 8]],
  );
  const missing = await cube('cluster', 'show');
  assert.equal(missing.code, 2);
  assert.match(missing.err, /BAD_FLAG/);
  const unknown = await cube('cluster', 'show', '--accelerator', 'h100', '--gpus', '8');
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /h100-sxm/);
});

test('cube cluster path and collective explain their numbers', async () => {
  const path = await cube(
    'cluster',
    'path',
    'sn0/srv00/gpu0',
    'sn3/srv00/gpu0',
    '--cluster',
    examplePath('supernode-1024'),
    '--json',
  );
  assert.equal(path.code, 0, path.err);
  assert.equal((JSON.parse(path.out) as { kind: string }).kind, 'ocs-relay');
  const collective = await cube(
    'cluster',
    'collective',
    'all-reduce',
    '--bytes',
    '256MiB',
    '--devices',
    'sn0/srv00',
    '--cluster',
    examplePath('supernode-1024'),
  );
  assert.equal(collective.code, 0, collective.err);
  assert.match(collective.out, /all-reduce of 268,435,456 bytes over 8 devices: ring/);
  assert.match(collective.out, /6 concurrent rings x 32 GB\/s/);
  const bad = await cube(
    'cluster',
    'collective',
    'all-reduce',
    '--bytes',
    '12 parsecs',
    '--accelerator',
    'h100-sxm',
    '--gpus',
    '8',
  );
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--bytes/);
});

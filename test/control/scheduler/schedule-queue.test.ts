import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scheduleQueue, type Allocation } from '../../../src/control/scheduler/index.ts';
import { cluster, job, names, node } from './helpers.ts';

const briefCluster = [
  node({ name: 'node-1' }),
  node({ name: 'node-2' }),
  node({ name: 'node-3', state: 'cordoned' }),
  node({ name: 'node-4' }),
  node({ name: 'node-5', state: 'down' }),
  node({ name: 'node-6', unhealthy: [1] }),
  node({ name: 'spare-1', role: 'spare' }),
];

test('a job that needs more nodes than are free waits and places nothing', () => {
  const result = scheduleQueue({
    nodes: briefCluster,
    jobs: [job({ id: 'j-big', nodes: 4 })],
    allocations: [],
    options: { reserveSpares: true },
  });
  assert.deepEqual(result.placements, []);
  assert.equal(result.waiting.length, 1);
  assert.equal(result.waiting[0]?.jobId, 'j-big');
});

test('the waiting reason says how many nodes have the devices and why the others are out', () => {
  const result = scheduleQueue({
    nodes: briefCluster,
    jobs: [job({ id: 'j-big', nodes: 4 })],
    allocations: [],
  });
  assert.equal(
    result.waiting[0]?.reason,
    'needs 4 nodes with 2 healthy cpu devices; 3 ready worker nodes have them ' +
      '(node-3 cordoned, node-5 down, 1 spare kept in reserve); ' +
      'node-6 has only 1 healthy cpu device',
  );
});

test('the waiting reason names the jobs holding the nodes', () => {
  const result = scheduleQueue({
    nodes: [node({ name: 'a' }), node({ name: 'b' })],
    jobs: [job({ id: 'j-two', nodes: 2 })],
    allocations: [{ jobId: 'j-running', nodeIds: ['id-b'] }],
  });
  assert.equal(
    result.waiting[0]?.reason,
    'needs 2 nodes with 2 healthy cpu devices; 1 ready worker node has them (b in use by j-running)',
  );
});

test('the higher-priority job is placed first whatever the input order', () => {
  const nodes = cluster({ superNodes: 1, nodesPerSuperNode: 2 });
  const result = scheduleQueue({
    nodes,
    jobs: [
      job({ id: 'j-low', nodes: 2, priority: 0, submittedAt: '2025-01-01T00:00:00Z' }),
      job({ id: 'j-high', nodes: 2, priority: 5, submittedAt: '2025-01-02T00:00:00Z' }),
    ],
    allocations: [],
  });
  assert.deepEqual(
    result.placements.map((p) => p.jobId),
    ['j-high'],
  );
  assert.equal(result.waiting[0]?.jobId, 'j-low');
  assert.match(
    result.waiting[0]?.reason ?? '',
    /sn0-n0 and sn0-n1 just placed for higher-priority j-high/,
  );
});

test('among jobs of equal priority the oldest is placed first', () => {
  const nodes = cluster({ superNodes: 1, nodesPerSuperNode: 3 });
  const result = scheduleQueue({
    nodes,
    jobs: [
      job({ id: 'j-new', nodes: 2, submittedAt: '2025-01-03T00:00:00Z' }),
      job({ id: 'j-old', nodes: 2, submittedAt: '2025-01-01T00:00:00Z' }),
      job({ id: 'j-mid', nodes: 1, submittedAt: '2025-01-02T00:00:00Z' }),
    ],
    allocations: [],
  });
  assert.deepEqual(
    result.placements.map((p) => p.jobId),
    ['j-old', 'j-mid'],
  );
  assert.deepEqual(
    result.waiting.map((w) => w.jobId),
    ['j-new'],
  );
});

test('a waiting job holds back every job behind it by default, even ones that would fit', () => {
  const result = scheduleQueue({
    nodes: briefCluster,
    jobs: [job({ id: 'j-big', nodes: 4, priority: 1 }), job({ id: 'j-small', nodes: 1 })],
    allocations: [],
  });
  assert.deepEqual(result.placements, []);
  assert.equal(
    result.waiting[1]?.reason,
    'waits behind j-big (priority 1, needs 4 nodes): jobs start in priority order and ' +
      'backfill is off; it would fit now',
  );
});

test('with backfill, jobs behind a waiting job run only on nodes it cannot use', () => {
  const nodes = [
    node({ name: 'wide-1', devices: 4 }),
    node({ name: 'wide-2', devices: 4 }),
    node({ name: 'wide-3', devices: 4, state: 'cordoned' }),
    node({ name: 'narrow-1', devices: 2 }),
  ];
  const result = scheduleQueue({
    nodes,
    jobs: [
      job({ id: 'j-wide', nodes: 3, devicesPerNode: 4, priority: 2 }),
      job({ id: 'j-also-wide', nodes: 1, devicesPerNode: 4, priority: 1 }),
      job({ id: 'j-narrow', nodes: 1, devicesPerNode: 2 }),
    ],
    allocations: [],
    options: { backfill: true },
  });
  assert.deepEqual(
    result.placements.map((p) => [p.jobId, names(p.placement)]),
    [['j-narrow', ['narrow-1']]],
  );
  assert.match(
    result.waiting.find((w) => w.jobId === 'j-also-wide')?.reason ?? '',
    /wide-1 and wide-2 held for higher-priority j-wide/,
  );
});

test('a job whose spec can never be placed does not hold back the queue', () => {
  const nodes = cluster({ superNodes: 1, nodesPerSuperNode: 2 });
  const result = scheduleQueue({
    nodes,
    jobs: [
      job({ id: 'j-bad', nodes: 1, priority: 9, layout: { tp: 4, pp: 1, dp: 1 } }),
      job({ id: 'j-ok', nodes: 2 }),
    ],
    allocations: [],
  });
  assert.deepEqual(
    result.placements.map((p) => p.jobId),
    ['j-ok'],
  );
  assert.match(result.waiting[0]?.reason ?? '', /does not match the world size/);
});

test('a job larger than the whole cluster waits without holding back the queue', () => {
  const nodes = cluster({ superNodes: 1, nodesPerSuperNode: 2 });
  const result = scheduleQueue({
    nodes,
    jobs: [job({ id: 'j-huge', nodes: 10, priority: 9 }), job({ id: 'j-ok', nodes: 1 })],
    allocations: [],
  });
  assert.deepEqual(
    result.placements.map((p) => p.jobId),
    ['j-ok'],
  );
  assert.match(
    result.waiting[0]?.reason ?? '',
    /the cluster has only 2 worker nodes with 2 cpu devices, so the job waits for more nodes to join/,
  );
});

test('nodes allocated to running jobs are never placed again', () => {
  const nodes = cluster({ superNodes: 1, nodesPerSuperNode: 4 });
  const allocations: Allocation[] = [{ jobId: 'j-running', nodeIds: ['id-sn0-n0', 'id-sn0-n2'] }];
  const result = scheduleQueue({ nodes, jobs: [job({ id: 'j', nodes: 2 })], allocations });
  assert.deepEqual(names(result.placements[0]!.placement), ['sn0-n1', 'sn0-n3']);
});

test('jobs of different device types share the queue, each on its own kind of node', () => {
  const nodes = [
    node({ name: 'cpu-1' }),
    node({ name: 'gpu-1', kind: 'nvidia', devices: 8 }),
    node({ name: 'gpu-2', kind: 'nvidia', devices: 8 }),
  ];
  const result = scheduleQueue({
    nodes,
    jobs: [
      job({ id: 'j-gpu', nodes: 2, devicesPerNode: 8, deviceType: 'nvidia', priority: 1 }),
      job({ id: 'j-cpu', nodes: 1 }),
      job({ id: 'j-amd', nodes: 1, deviceType: 'amd', priority: -1 }),
    ],
    allocations: [],
  });
  assert.deepEqual(
    result.placements.map((p) => [p.jobId, names(p.placement)]),
    [
      ['j-gpu', ['gpu-1', 'gpu-2']],
      ['j-cpu', ['cpu-1']],
    ],
  );
  assert.equal(
    result.waiting[0]?.reason,
    'needs 1 node with 2 healthy amd devices; no node has amd devices, so the job waits for ' +
      'more nodes to join and does not hold back other jobs',
  );
});

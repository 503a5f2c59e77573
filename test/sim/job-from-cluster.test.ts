import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defaultCluster, loadClusterFile } from '../../src/hardware/index.ts';
import { jobFromCluster, replicaPeer, switchCount } from '../../src/sim/index.ts';

const root = new URL('../../', import.meta.url).pathname;
const options = { name: 'm', stepTimeS: 2, checkpointBytesPerGpu: 1e9 };

describe('a simulated job from a cluster', () => {
  test('a default cluster: 32-server rail groups, one rail switch per NIC, NIC and host-link bandwidths', () => {
    const job = jobFromCluster(defaultCluster({ accelerator: 'h100-sxm', gpus: 16_384 }), options);
    assert.equal(job.nodes, 2048);
    assert.equal(job.gpusPerNode, 8);
    assert.equal(job.nodesPerSwitch, 32);
    assert.equal(job.switchesPerGroup, 8);
    assert.equal(switchCount(job), 64 * 8);
    assert.equal(job.nicGBsPerNode, (8 * 400) / 8);
    assert.equal(job.snapshotGBsPerGpu, 64);
  });

  test('a super-node cluster: a fabric failure takes a super-node; replicas live in another one', () => {
    const job = jobFromCluster(
      loadClusterFile(`${root}examples/clusters/supernode-1024.yaml`),
      options,
    );
    assert.equal(job.nodes, 128);
    assert.equal(job.nodesPerSwitch, 32);
    assert.equal(job.switchesPerGroup, 1);
    for (let node = 0; node < job.nodes; node += 1) {
      const peer = replicaPeer(job, node);
      assert.ok(peer !== null && peer !== node);
      assert.notEqual(Math.floor(peer / 32), Math.floor(node / 32), `node ${node} -> ${peer}`);
    }
  });

  test('a single server has no replica peer', () => {
    const job = jobFromCluster(defaultCluster({ accelerator: 'h100-sxm', gpus: 8 }), options);
    assert.equal(job.nodes, 1);
    assert.equal(replicaPeer(job, 0), null);
  });
});

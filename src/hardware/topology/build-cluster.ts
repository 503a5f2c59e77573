import { CubeError } from '../../core/index.ts';
import { getAccelerator, standardServerOf } from '../catalog/index.ts';
import type { Cluster, PacketFabric, ServerRun } from './cluster.ts';

/** Servers under one leaf (or rail) switch of the default fabric: a 64-port switch, half up. */
export const defaultLeafServers = 32;

/**
 * The cluster `--accelerator ID --gpus N` means: N accelerators in the accelerator's standard
 * server, ceil(N / perServer) servers, on a non-blocking packet fabric (oversubscription 1).
 *
 * - N not a multiple of the server size: the last server is partly used (its first
 *   N mod perServer accelerators); the others are full.
 * - Up to 32 servers: one switch tier (a single non-blocking switch layer).
 * - More: two tiers, leaf (or rail, when the server is rail-optimized) groups of 32 servers
 *   under a non-blocking spine.
 */
export function defaultCluster(options: { accelerator: string; gpus: number }): Cluster {
  const { gpus } = options;
  if (!Number.isInteger(gpus) || gpus <= 0)
    throw new CubeError('INVALID_VALUE', `the GPU count must be a positive integer, got ${gpus}`, {
      where: { field: '--gpus' },
    });
  const accelerator = getAccelerator(options.accelerator, { field: '--accelerator' });
  const model = standardServerOf(accelerator);
  const perServer = model.acceleratorsPerServer;
  const full = Math.floor(gpus / perServer);
  const rest = gpus % perServer;
  const runs: ServerRun[] = [];
  if (full > 0)
    runs.push({
      model,
      accelerator,
      count: full,
      devicesPerServer: perServer,
      firstServer: 0,
      firstDevice: 0,
      superNode: null,
    });
  if (rest > 0)
    runs.push({
      model,
      accelerator,
      count: 1,
      devicesPerServer: rest,
      firstServer: full,
      firstDevice: full * perServer,
      superNode: null,
    });
  const serverCount = full + (rest > 0 ? 1 : 0);
  const twoTier = serverCount > defaultLeafServers;
  const fabric: PacketFabric = twoTier
    ? {
        kind: model.nics.railOptimized ? 'rail-optimized' : 'clos',
        tiers: [
          {
            name: model.nics.railOptimized ? 'rail' : 'leaf',
            serversPerGroup: defaultLeafServers,
            oversubscription: 1,
          },
          { name: 'spine', serversPerGroup: null, oversubscription: 1 },
        ],
        switchLatencyUs: 0.5,
      }
    : {
        kind: 'clos',
        tiers: [{ name: 'leaf', serversPerGroup: null, oversubscription: 1 }],
        switchLatencyUs: 0.5,
      };
  return {
    name: `${gpus}x${accelerator.id}`,
    description: `${gpus} x ${accelerator.name} in ${serverCount} x ${model.id} on a non-blocking ${twoTier ? 'two' : 'one'}-tier fabric`,
    runs,
    superNodes: [],
    fabric,
    ocs: null,
    serverCount,
    deviceCount: gpus,
  };
}

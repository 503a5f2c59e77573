import type { Accelerator } from '../accelerator.ts';
import type { ServerSpec } from '../server.ts';

/**
 * A resolved cluster: every id looked up, every server placed. Servers are stored as runs of
 * identical servers (not one record per server), so a 2,048-server cluster is a handful of
 * records; a server's global index and a device's global index are offsets into these runs.
 */
export interface Cluster {
  readonly name: string;
  readonly description: string;
  /** Runs of identical servers in global server order. */
  readonly runs: readonly ServerRun[];
  /** Super-nodes in order; empty when the cluster has none. */
  readonly superNodes: readonly SuperNode[];
  /** The packet (scale-out) fabric; null when servers are joined only by super-nodes and OCS. */
  readonly fabric: PacketFabric | null;
  readonly ocs: OpticalCircuitSwitch | null;
  readonly serverCount: number;
  readonly deviceCount: number;
}

/** `count` identical servers, placed at global server index `firstServer` onward. */
export interface ServerRun {
  readonly model: ServerSpec;
  readonly accelerator: Accelerator;
  readonly count: number;
  /** Accelerators used in each server (at most the model's count; the first ones). */
  readonly devicesPerServer: number;
  readonly firstServer: number;
  readonly firstDevice: number;
  /** The super-node holding these servers; null when the cluster has none. */
  readonly superNode: number | null;
}

/** A set of servers whose accelerators are all-to-all connected at link speed. */
export interface SuperNode {
  readonly index: number;
  /** `sn<index>`: what OCS circuits and addresses name it by. */
  readonly id: string;
  readonly firstServer: number;
  readonly serverCount: number;
  readonly firstDevice: number;
  readonly deviceCount: number;
  /** Each accelerator's bandwidth into the super-node fabric, one direction, GB/s. */
  readonly gbsPerDirection: number;
  readonly latencyUs: number;
}

/** One switching tier of a Clos; tier 1 is the leaf (or rail) tier. */
export interface FabricTier {
  readonly name: string;
  /** Servers in one group of this tier; null on the top tier, which spans the cluster. */
  readonly serversPerGroup: number | null;
  /** Down over up bandwidth of a group of this tier: traffic leaving the group is divided by it. */
  readonly oversubscription: number;
}

interface FabricCommon {
  readonly tiers: readonly FabricTier[];
  /** Latency added by each switch traversal above tier 1, microseconds (tier 1 is in the NIC's). */
  readonly switchLatencyUs: number;
}

/**
 * The packet fabric.
 * - `clos`: every NIC of a server goes to the leaf of its group; a multi-tier fat-tree above.
 * - `rail-optimized`: in each tier-1 (rail) group, NIC i of every server goes to rail switch i.
 *   Cross-rail traffic goes up a tier or, when cheaper, hops inside the server to the GPU on the
 *   destination's rail first (PXN).
 */
export type PacketFabric =
  (FabricCommon & { readonly kind: 'clos' }) | (FabricCommon & { readonly kind: 'rail-optimized' });

/** An optical circuit switch and its current matching. */
export interface OpticalCircuitSwitch {
  readonly latencyUs: number;
  readonly circuits: readonly Circuit[];
}

/** `count` circuits between super-nodes `a` and `b` (indices), each `gbsPerCircuit` per direction. */
export interface Circuit {
  readonly a: number;
  readonly b: number;
  readonly count: number;
  readonly gbsPerCircuit: number;
}

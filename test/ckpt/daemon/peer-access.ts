import {
  newMasterKey,
  peerAccessFor,
  type CheckpointDaemon,
  type PeerAccess,
  type PlacedNode,
} from '../../../src/ckpt/daemon/index.ts';

/** A job attempt's placement, and the access the control plane would give each of its nodes. */
export interface Placement {
  readonly job: string;
  readonly attempt: number;
  readonly nodes: readonly PlacedNode[];
}

/** The access of every node of `placement`, derived from `master` as the control plane does. */
export function accessOf(master: Buffer, placement: Placement): Map<string, PeerAccess> {
  return new Map(placement.nodes.map((n) => [n.node, peerAccessFor(master, placement, n.node)]));
}

/** Gives each daemon its access for `placement` (as a launch command would). */
export function grant(
  daemons: readonly CheckpointDaemon[],
  placement: Placement,
  master: Buffer = testMaster,
): void {
  const access = accessOf(master, placement);
  for (const daemon of daemons) {
    const mine = access.get(daemon.node);
    if (mine !== undefined) daemon.setPeerAccess(placement.job, mine);
  }
}

/** One master key for a test file's daemons. */
export const testMaster = newMasterKey();

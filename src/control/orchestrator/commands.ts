import type { PeerAccess } from '../../ckpt/daemon/index.ts';

/**
 * What the control plane tells a node to do, delivered in the reply to its next heartbeat
 * (docs/control-protocol.md: the control plane never connects to agents).
 */
export interface PeerEndpoint {
  readonly node: string;
  readonly host: string;
  readonly port: number;
}

export type NodeCommand =
  | {
      readonly kind: 'launch';
      readonly jobId: string;
      readonly attempt: number;
      readonly ranks: readonly { readonly rank: number; readonly localRank: number }[];
      readonly worldSize: number;
      readonly localWorldSize: number;
      readonly masterAddr: string;
      readonly masterPort: number;
      readonly command: readonly string[];
      readonly workingDir: string;
      readonly env: Readonly<Record<string, string>>;
      readonly checkpoint: {
        readonly everySteps: number;
        readonly l3Path: string;
        readonly l3Every: number;
        readonly keep: Readonly<Record<string, number>>;
        readonly replicaPeer: PeerEndpoint | null;
        readonly peers: readonly PeerEndpoint[];
        /** The node's checkpoint-peer keys and grants for this attempt (secret; never logged). */
        readonly peerAccess: PeerAccess;
      };
    }
  | { readonly kind: 'kill'; readonly jobId: string; readonly attempt: number }
  | {
      readonly kind: 'fault';
      readonly fault: 'kill-node' | 'kill-rank' | 'fail-probe';
      readonly jobId?: string;
      readonly rank?: number;
    };

/** Commands waiting for each node's next heartbeat. In memory: a restarted server rebuilds launches from job state. */
export class CommandOutbox {
  readonly #pending = new Map<string, NodeCommand[]>();

  push(nodeId: string, command: NodeCommand): void {
    const list = this.#pending.get(nodeId) ?? [];
    list.push(command);
    this.#pending.set(nodeId, list);
  }

  /** Takes every pending command of a node (they are sent once). */
  take(nodeId: string): NodeCommand[] {
    const list = this.#pending.get(nodeId) ?? [];
    this.#pending.delete(nodeId);
    return list;
  }

  /** Drops pending commands of a job's older attempts (a launch superseded by a restart). */
  dropJob(jobId: string, beforeAttempt: number): void {
    for (const [node, list] of this.#pending)
      this.#pending.set(
        node,
        list.filter((c) => c.kind === 'fault' || c.jobId !== jobId || c.attempt >= beforeAttempt),
      );
  }
}

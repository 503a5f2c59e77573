import type { ClusterNode } from './api/types.ts';
import type { Heartbeats } from './api/use-heartbeats.ts';

/**
 * How the node list shows a node: the control plane's state, except that a node it still
 * holds `ready` (or `cordoned`) but has not heard from for longer than it allows before
 * suspecting it (2.5 heartbeat intervals) is `late`, until the control plane marks it `down`.
 */
export interface NodeLiveness {
  /** The state to show: the control plane's, or `late`. */
  readonly shown: ClusterNode['state'] | 'late';
  /** How long since its newest heartbeat, by the control plane's clock; null: never heard. */
  readonly silentMs: number | null;
  /** The silence after which the control plane marks it down; null when unknown. */
  readonly timeoutMs: number | null;
}

/** A node's liveness at `nowMs` (this browser's clock), from the heartbeats when known. */
export function nodeLiveness(
  node: ClusterNode,
  heartbeats: Heartbeats | null,
  nowMs: number,
): NodeLiveness {
  const beat = heartbeats?.byNode.get(node.id);
  if (heartbeats === null || beat === undefined) {
    // No word from the failure detector: the stored time, which lags up to 10 s, is all
    // there is; it is shown as an age but never taken for a silence.
    return {
      shown: node.state,
      silentMs: node.lastHeartbeatAt === null ? null : Math.max(0, nowMs - node.lastHeartbeatAt),
      timeoutMs: null,
    };
  }
  const silentMs = Math.max(0, nowMs + heartbeats.skewMs - beat.lastSeenAt);
  const live = node.state === 'ready' || node.state === 'cordoned';
  return {
    shown: live && silentMs > heartbeats.suspectAfterMs ? 'late' : node.state,
    silentMs,
    timeoutMs: beat.timeoutMs,
  };
}

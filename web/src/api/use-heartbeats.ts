import { useMemo } from 'react';
import { useClient } from './client-context.tsx';
import type { ResponseOf } from './types.ts';
import { useResource } from './use-resource.ts';

/** `GET /api/v1/heartbeats`: each node's newest heartbeat as the failure detector saw it. */
type HeartbeatsAnswer = ResponseOf<'getHeartbeats'>;

/** One node's newest heartbeat (epoch ms, the control plane's clock) and its timeout. */
export interface NodeHeartbeat {
  readonly lastSeenAt: number;
  readonly timeoutMs: number;
}

/** The heartbeats, and how to read them against this browser's clock. */
export interface Heartbeats {
  /** The control plane's clock minus this browser's, when they were fetched. */
  readonly skewMs: number;
  /** Silence after which the control plane holds a node suspect. */
  readonly suspectAfterMs: number;
  readonly byNode: ReadonlyMap<string, NodeHeartbeat>;
}

/**
 * Follows the nodes' heartbeats every `intervalMs` (default 1 s). `GET /nodes` carries only
 * the stored heartbeat time, which the control plane writes every 10 s: read as an age, a
 * healthy node would look 10 s silent.
 */
export function useHeartbeats(intervalMs = 1000) {
  const client = useClient();
  const resource = useResource(
    'heartbeats',
    async (signal) => {
      const answer = await client.get<HeartbeatsAnswer>('/heartbeats', { signal });
      return { answer, receivedAt: Date.now() };
    },
    { intervalMs },
  );
  const { data } = resource;
  const heartbeats = useMemo<Heartbeats | null>(
    () =>
      data === null
        ? null
        : {
            skewMs: data.answer.now - data.receivedAt,
            suspectAfterMs: data.answer.suspectAfterMs,
            byNode: new Map(
              data.answer.nodes.map((n) => [
                n.nodeId,
                { lastSeenAt: n.lastSeenAt, timeoutMs: n.timeoutMs },
              ]),
            ),
          },
    [data],
  );
  return { heartbeats, error: resource.error };
}

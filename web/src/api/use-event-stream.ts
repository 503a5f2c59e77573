import { useEffect, useRef, useState } from 'react';
import { useClient } from './client-context.tsx';
import { eventKinds, type CubeEvent } from './types.ts';

/** Whether the live stream is connected. */
export type StreamStatus = 'connecting' | 'live' | 'reconnecting';

/**
 * Follows the control plane's event stream (`GET /api/v1/stream`, server-sent events), for
 * one job or for all, from event id `after` (the log is replayed from there first). The
 * browser reconnects by itself and resumes after the last event it saw (`Last-Event-ID`).
 */
export function useEventStream(
  onEvent: (event: CubeEvent) => void,
  options: { job?: string; after?: number; enabled?: boolean } = {},
): StreamStatus {
  const client = useClient();
  const [status, setStatus] = useState<StreamStatus>('connecting');
  const handler = useRef(onEvent);
  useEffect(() => {
    handler.current = onEvent;
  });
  const { job, after, enabled = true } = options;

  useEffect(() => {
    if (!enabled) return;
    const source = new EventSource(client.streamUrl({ job, after }));
    setStatus('connecting');
    const listener = (message: MessageEvent<string>): void => {
      handler.current(JSON.parse(message.data) as CubeEvent);
    };
    for (const kind of eventKinds) source.addEventListener(kind, listener);
    source.onopen = () => setStatus('live');
    source.onerror = () => setStatus('reconnecting');
    return () => {
      for (const kind of eventKinds) source.removeEventListener(kind, listener);
      source.close();
    };
  }, [client, job, after, enabled]);

  return status;
}

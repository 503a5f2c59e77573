import { useEffect, useRef, useState } from 'react';
import { useClient } from './client-context.tsx';
import { eventKinds, type CubeEvent } from './types.ts';

/** Whether the live stream is connected. */
export type StreamStatus = 'connecting' | 'live' | 'reconnecting';

/**
 * Follows the control plane's event stream (`GET /api/v1/stream`, server-sent events), for
 * one job or for all, from event id `after` (the log is replayed from there first). Each
 * connection takes a fresh single-use ticket, so a dropped stream is reopened here (not by the
 * browser, whose retry would reuse a spent ticket) after the last event it saw.
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
    const controller = new AbortController();
    let source: EventSource | null = null;
    let retry: ReturnType<typeof setTimeout> | null = null;
    let lastId = after;
    setStatus('connecting');
    const listener = (message: MessageEvent<string>): void => {
      const id = Number(message.lastEventId);
      if (Number.isSafeInteger(id) && id > 0) lastId = id;
      handler.current(JSON.parse(message.data) as CubeEvent);
    };
    const reopen = (): void => {
      if (controller.signal.aborted) return;
      setStatus('reconnecting');
      retry = setTimeout(() => void open(), 1000);
    };
    const open = async (): Promise<void> => {
      let url: string;
      try {
        url = await client.streamUrl({ job, after: lastId }, { signal: controller.signal });
      } catch {
        reopen();
        return;
      }
      if (controller.signal.aborted) return;
      const current = new EventSource(url);
      source = current;
      for (const kind of eventKinds) current.addEventListener(kind, listener);
      current.onopen = () => setStatus('live');
      current.onerror = () => {
        current.close();
        reopen();
      };
    };
    void open();
    return () => {
      controller.abort();
      if (retry !== null) clearTimeout(retry);
      if (source !== null) {
        for (const kind of eventKinds) source.removeEventListener(kind, listener);
        source.close();
      }
    };
  }, [client, job, after, enabled]);

  return status;
}

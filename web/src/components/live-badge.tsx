import type { StreamStatus } from '../api/use-event-stream.ts';

/** Whether the view is following the event stream. */
export function LiveBadge(props: { status: StreamStatus }) {
  const text = { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…' }[
    props.status
  ];
  return (
    <span className={`live live-${props.status}`} title="the event stream">
      <span className="dot" /> {text}
    </span>
  );
}

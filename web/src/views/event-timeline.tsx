import { useState } from 'react';
import type { CubeEvent } from '../api/types.ts';
import { Empty } from '../components/states.tsx';
import { clock } from '../format.ts';

function tone(kind: string): string {
  if (kind === 'fault-detected' || kind === 'job-failed' || kind === 'node-down') return 'bad';
  if (kind === 'job-restarting' || kind === 'node-cordoned' || kind === 'spare-taken')
    return 'warn';
  if (
    kind === 'job-restored' ||
    kind === 'job-resumed' ||
    kind === 'job-succeeded' ||
    kind === 'node-up' ||
    kind === 'node-uncordoned'
  )
    return 'good';
  if (kind === 'checkpoint-committed') return 'ckpt';
  return 'plain';
}

/** The interesting fields of an event's data, in one line. */
function summary(e: CubeEvent, nodeName: (id: string) => string): string {
  const parts: string[] = [];
  if (e.nodeId != null) parts.push(nodeName(e.nodeId));
  if (e.rank != null) parts.push(`rank ${e.rank}`);
  if (e.attempt != null) parts.push(`attempt ${e.attempt}`);
  for (const [k, v] of Object.entries(e.data)) {
    // Placements are shown on the topology; the raw list would drown the line.
    if (v === undefined || v === null || k === 'explanation' || k === 'placement') continue;
    parts.push(
      `${k}: ${typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v)}`,
    );
  }
  return parts.join(' · ');
}

/** Hidden unless asked for: many at scale, and none of them a fault or a recovery. */
const noisy = new Set(['rank-launched', 'rank-running', 'rank-exited', 'checkpoint-committed']);

/**
 * Whether an event is in the default list: everything but per-rank and checkpoint events, so
 * node events (`node-down`, `node-cordoned`, `node-up`, `node-uncordoned`, `node-joined`) are.
 */
export function shownByDefault(kind: string): boolean {
  return !noisy.has(kind);
}

/**
 * A job's events in order (with those of the nodes it ran on), faults in red and recoveries
 * in green. Per-rank and checkpoint events (many at scale) are hidden unless asked for.
 */
export function EventTimeline(props: {
  events: readonly CubeEvent[];
  nodeName: (id: string) => string;
}) {
  const [all, setAll] = useState(false);
  const shown = all ? props.events : props.events.filter((e) => shownByDefault(e.kind));
  return (
    <div className="events">
      <label className="check">
        <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> show rank
        and checkpoint events (
        {props.events.length - props.events.filter((e) => shownByDefault(e.kind)).length})
      </label>
      {shown.length === 0 ? (
        <Empty>No events yet.</Empty>
      ) : (
        <ol className="timeline" data-testid="event-timeline">
          {shown.map((e) => (
            <li key={e.id} className={`ev ev-${tone(e.kind)}`} data-kind={e.kind}>
              <time>{clock(e.at)}</time>
              <span className="ev-kind">{e.kind}</span>
              <span className="ev-data">{summary(e, props.nodeName)}</span>
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

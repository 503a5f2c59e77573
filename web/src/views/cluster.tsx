import { useCallback, useMemo, useState } from 'react';
import { useClient } from '../api/client-context.tsx';
import { useEventStream } from '../api/use-event-stream.ts';
import { useHeartbeats } from '../api/use-heartbeats.ts';
import { useResource } from '../api/use-resource.ts';
import type { ClusterNode, CubeEvent } from '../api/types.ts';
import { summarise } from '../cluster-groups.ts';
import { LiveBadge } from '../components/live-badge.tsx';
import { StateBadge } from '../components/state-badge.tsx';
import { Empty, ErrorBox, Loading, Panel } from '../components/states.tsx';
import { Topology } from '../components/topology.tsx';
import { bytes, duration } from '../format.ts';
import { nodeLiveness, type NodeLiveness } from '../node-liveness.ts';
import { useNow } from '../use-now.ts';

function Tile(props: { label: string; value: string; tone?: 'ok' | 'warn' | 'bad' }) {
  return (
    <div className={`tile tile-${props.tone ?? 'plain'}`}>
      <div className="tile-value">{props.value}</div>
      <div className="tile-label">{props.label}</div>
    </div>
  );
}

/** The node's state as the list shows it: the control plane's, or `late` while it is silent. */
function LivenessBadge(props: { node: ClusterNode; liveness: NodeLiveness }) {
  const { node, liveness } = props;
  if (liveness.shown !== 'late') return <StateBadge state={node.state} />;
  const silent = duration((liveness.silentMs ?? 0) / 1000);
  const limit = liveness.timeoutMs === null ? '' : `; down after ${liveness.timeoutMs / 1000} s`;
  return (
    <>
      {node.state === 'ready' ? null : <StateBadge state={node.state} />}{' '}
      <span
        className="badge badge-late"
        title={`the control plane holds it ${node.state} but has not heard from it for ${silent}${limit}`}
      >
        late
      </span>
    </>
  );
}

/** How long ago its newest heartbeat was, with the timeout once it is late. */
function heartbeatAge(liveness: NodeLiveness): string {
  if (liveness.silentMs === null) return 'never';
  const age = `${duration(liveness.silentMs / 1000)} ago`;
  return liveness.shown === 'late' && liveness.timeoutMs !== null
    ? `${age} (timeout ${liveness.timeoutMs / 1000} s)`
    : age;
}

function NodeDetail(props: { node: ClusterNode; liveness: NodeLiveness }) {
  const { node, liveness } = props;
  const probes = node.health?.probes ?? [];
  return (
    <div className="node-detail" data-testid="node-detail">
      <h3>
        {node.name} <LivenessBadge node={node} liveness={liveness} />{' '}
        {node.role === 'spare' ? <span className="badge badge-spare">hot spare</span> : null}
      </h3>
      <dl className="facts">
        <dt>id</dt>
        <dd>
          <code>{node.id}</code>
        </dd>
        <dt>labels</dt>
        <dd>
          {Object.entries(node.labels)
            .map(([k, v]) => `${k}=${v ?? ''}`)
            .join(', ') || '–'}
        </dd>
        <dt>host</dt>
        <dd>{node.host ?? '–'}</dd>
        <dt>memory</dt>
        <dd>{bytes(node.hostMemoryBytes)}</dd>
        <dt>heartbeat</dt>
        <dd>{heartbeatAge(liveness)}</dd>
      </dl>
      <table className="table compact">
        <thead>
          <tr>
            <th>device</th>
            <th>model</th>
            <th>memory</th>
            <th>health</th>
          </tr>
        </thead>
        <tbody>
          {node.devices.map((d) => (
            <tr key={d.index}>
              <td>
                {d.kind}:{d.index}
              </td>
              <td>{d.model}</td>
              <td>{bytes(d.memoryBytes)}</td>
              <td>
                <StateBadge state={d.health} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {probes.length === 0 ? null : (
        <ul className="probes">
          {probes.map((p) => (
            <li key={p.name} className={p.ok ? 'probe-ok' : 'probe-bad'}>
              {p.ok ? '✓' : '✕'} {p.name}
              {p.message === undefined || p.message === '' ? '' : `: ${p.message}`}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/**
 * The cluster: counts, the topology with every device coloured by health, and the node list.
 * Node events on the stream refresh it at once; a slow poll picks up health that changes
 * without an event (a heartbeat's device health).
 */
export function ClusterView() {
  const client = useClient();
  const nodes = useResource(
    'nodes',
    (signal) => client.get<{ nodes: ClusterNode[] }>('/nodes', { signal }).then((r) => r.nodes),
    { intervalMs: 5000 },
  );
  const [selected, setSelected] = useState<string | null>(null);
  const { reload } = nodes;
  const onEvent = useCallback(
    (e: CubeEvent) => {
      if (e.kind.startsWith('node-') || e.kind === 'spare-taken') reload();
    },
    [reload],
  );
  const status = useEventStream(onEvent);
  const list = nodes.data;
  const summary = useMemo(() => (list === null ? null : summarise(list)), [list]);
  const { heartbeats } = useHeartbeats();
  // Ages count up between fetches, so a silent node turns late on time.
  const now = useNow(500);
  // Kept per node list, not per tick: the topology lays out again only when they change.
  const live = useMemo(() => (list ?? []).filter((n) => n.state !== 'left'), [list]);
  const liveness = useMemo(
    () => new Map(live.map((n) => [n.id, nodeLiveness(n, heartbeats, now)])),
    [live, heartbeats, now],
  );
  const lateKey = live
    .filter((n) => liveness.get(n.id)?.shown === 'late')
    .map((n) => n.id)
    .join(' ');
  const lateIds = useMemo(() => new Set(lateKey === '' ? [] : lateKey.split(' ')), [lateKey]);

  if (list === null)
    return nodes.error === null ? (
      <Loading what="the cluster" />
    ) : (
      <ErrorBox what="the cluster" error={nodes.error} onRetry={nodes.reload} />
    );
  const chosen = live.find((n) => n.id === selected) ?? null;
  const late = lateIds.size;
  // A late node is not counted ready, though the control plane still holds it so.
  const lateReady = live.filter((n) => n.state === 'ready' && lateIds.has(n.id)).length;
  const lateSpares = live.filter(
    (n) => n.role === 'spare' && n.state === 'ready' && lateIds.has(n.id),
  ).length;

  return (
    <div className="page" data-page="cluster">
      <div className="page-head">
        <h1>Cluster</h1>
        <LiveBadge status={status} />
      </div>
      {nodes.error === null ? null : (
        <ErrorBox what="the latest node list" error={nodes.error} onRetry={nodes.reload} />
      )}
      {summary === null || live.length === 0 ? (
        <Empty>
          No nodes have joined yet. Start agents with{' '}
          <code>cube agent --server URL --token JOIN_TOKEN</code>, or a whole cluster on this
          machine with <code>cube up</code>.
        </Empty>
      ) : (
        <>
          <div className="tiles">
            <Tile label="nodes ready" value={`${summary.ready - lateReady} / ${summary.nodes}`} />
            <Tile
              label="cordoned"
              value={String(summary.cordoned)}
              tone={summary.cordoned > 0 ? 'warn' : 'ok'}
            />
            <Tile
              label="down / late"
              value={`${summary.down} / ${late}`}
              tone={summary.down > 0 ? 'bad' : late > 0 ? 'warn' : 'ok'}
            />
            <Tile
              label="hot spares ready"
              value={`${summary.sparesReady - lateSpares} / ${summary.spares}`}
              tone={summary.sparesReady - lateSpares === 0 ? 'warn' : 'ok'}
            />
            <Tile label="devices ok" value={`${summary.devicesOk} / ${summary.devices}`} />
            <Tile
              label="devices degraded / failed"
              value={`${summary.devicesDegraded} / ${summary.devicesFailed}`}
              tone={summary.devicesFailed > 0 ? 'bad' : summary.devicesDegraded > 0 ? 'warn' : 'ok'}
            />
          </div>
          <div className="split">
            <Panel title="Topology" className="grow">
              <Topology nodes={live} late={lateIds} selected={selected} onSelect={setSelected} />
            </Panel>
            <Panel title={chosen === null ? 'Node' : 'Node'} className="side">
              {chosen === null ? (
                <Empty>
                  Click a node in the topology or the list to see its devices and probes.
                </Empty>
              ) : (
                <NodeDetail
                  node={chosen}
                  liveness={liveness.get(chosen.id) ?? nodeLiveness(chosen, heartbeats, now)}
                />
              )}
            </Panel>
          </div>
          <Panel title={`Nodes (${live.length})`}>
            <table className="table" data-testid="node-table">
              <thead>
                <tr>
                  <th>name</th>
                  <th>state</th>
                  <th>role</th>
                  <th>super-node</th>
                  <th>server</th>
                  <th>devices</th>
                  <th>heartbeat</th>
                </tr>
              </thead>
              <tbody>
                {live.map((n) => {
                  const l = liveness.get(n.id) ?? nodeLiveness(n, heartbeats, now);
                  return (
                    <tr
                      key={n.id}
                      className={n.id === selected ? 'row-selected' : undefined}
                      onClick={() => setSelected(n.id)}
                      data-node={n.name}
                      data-shown-state={l.shown}
                      data-silent-ms={l.silentMs === null ? undefined : Math.round(l.silentMs)}
                      data-timeout-ms={l.timeoutMs ?? undefined}
                    >
                      <td>{n.name}</td>
                      <td>
                        <LivenessBadge node={n} liveness={l} />
                      </td>
                      <td>
                        {n.role === 'spare' ? (
                          <span className="badge badge-spare">spare</span>
                        ) : (
                          'worker'
                        )}
                      </td>
                      <td>{n.labels.superNode ?? '–'}</td>
                      <td>{n.labels.server ?? '–'}</td>
                      <td>
                        {n.devices.filter((d) => d.health === 'ok').length} / {n.devices.length} ok
                      </td>
                      <td>{heartbeatAge(l)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </Panel>
        </>
      )}
    </div>
  );
}

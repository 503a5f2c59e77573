import { useCallback, useMemo, useState } from 'react';
import { useClient } from '../api/client-context.tsx';
import { useEventStream } from '../api/use-event-stream.ts';
import { useResource } from '../api/use-resource.ts';
import type { ClusterNode, CubeEvent } from '../api/types.ts';
import { summarise } from '../cluster-groups.ts';
import { LiveBadge } from '../components/live-badge.tsx';
import { StateBadge } from '../components/state-badge.tsx';
import { Empty, ErrorBox, Loading, Panel } from '../components/states.tsx';
import { Topology } from '../components/topology.tsx';
import { ago, bytes } from '../format.ts';

function Tile(props: { label: string; value: string; tone?: 'ok' | 'warn' | 'bad' }) {
  return (
    <div className={`tile tile-${props.tone ?? 'plain'}`}>
      <div className="tile-value">{props.value}</div>
      <div className="tile-label">{props.label}</div>
    </div>
  );
}

function NodeDetail(props: { node: ClusterNode; now: number }) {
  const { node, now } = props;
  const probes = node.health?.probes ?? [];
  return (
    <div className="node-detail" data-testid="node-detail">
      <h3>
        {node.name} <StateBadge state={node.state} />{' '}
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
        <dd>{ago(node.lastHeartbeatAt, now)}</dd>
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
  const now = Date.now();

  if (list === null)
    return nodes.error === null ? (
      <Loading what="the cluster" />
    ) : (
      <ErrorBox what="the cluster" error={nodes.error} onRetry={nodes.reload} />
    );
  const live = list.filter((n) => n.state !== 'left');
  const chosen = live.find((n) => n.id === selected) ?? null;

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
            <Tile label="nodes ready" value={`${summary.ready} / ${summary.nodes}`} />
            <Tile
              label="cordoned"
              value={String(summary.cordoned)}
              tone={summary.cordoned > 0 ? 'warn' : 'ok'}
            />
            <Tile
              label="down"
              value={String(summary.down)}
              tone={summary.down > 0 ? 'bad' : 'ok'}
            />
            <Tile
              label="hot spares ready"
              value={`${summary.sparesReady} / ${summary.spares}`}
              tone={summary.sparesReady === 0 ? 'warn' : 'ok'}
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
              <Topology nodes={live} selected={selected} onSelect={setSelected} />
            </Panel>
            <Panel title={chosen === null ? 'Node' : 'Node'} className="side">
              {chosen === null ? (
                <Empty>
                  Click a node in the topology or the list to see its devices and probes.
                </Empty>
              ) : (
                <NodeDetail node={chosen} now={now} />
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
                {live.map((n) => (
                  <tr
                    key={n.id}
                    className={n.id === selected ? 'row-selected' : undefined}
                    onClick={() => setSelected(n.id)}
                  >
                    <td>{n.name}</td>
                    <td>
                      <StateBadge state={n.state} />
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
                    <td>{ago(n.lastHeartbeatAt, now)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Panel>
        </>
      )}
    </div>
  );
}

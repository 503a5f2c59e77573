import { useCallback, useMemo, useState } from 'react';
import { useClient } from '../api/client-context.tsx';
import { useEventStream } from '../api/use-event-stream.ts';
import { useResource } from '../api/use-resource.ts';
import { useSeries } from '../api/use-series.ts';
import type { ClusterNode, CubeEvent, JobDetail } from '../api/types.ts';
import { LiveBadge } from '../components/live-badge.tsx';
import { StateBadge } from '../components/state-badge.tsx';
import { Empty, ErrorBox, Loading, Panel } from '../components/states.tsx';
import { Topology, type RankMap } from '../components/topology.tsx';
import { duration, si } from '../format.ts';
import { ended, totalSteps, worldSize } from '../job-facts.ts';
import { Link } from '../router.tsx';
import { CheckpointTimeline } from './checkpoint-timeline.tsx';
import { EventTimeline } from './event-timeline.tsx';
import { jobMarkers, LossChart, ThroughputChart } from './job-charts.tsx';
import { RankLogs } from './rank-logs.tsx';

function Fact(props: { label: string; value: string; testId?: string }) {
  return (
    <div className="tile" data-testid={props.testId}>
      <div className="tile-value">{props.value}</div>
      <div className="tile-label">{props.label}</div>
    </div>
  );
}

/**
 * One job: its state, loss and throughput curves with faults and recoveries marked, where
 * its ranks run, its checkpoints per level, its events and its ranks' logs, all live while
 * it runs.
 */
export function JobPage(props: { id: string }) {
  const { id } = props;
  const client = useClient();
  const path = `/jobs/${encodeURIComponent(id)}`;
  const job = useResource(`job:${id}`, (signal) => client.get<JobDetail>(path, { signal }), {
    intervalMs: 5000,
  });
  const nodes = useResource(
    'nodes',
    (signal) => client.get<{ nodes: ClusterNode[] }>('/nodes', { signal }).then((r) => r.nodes),
    { intervalMs: 5000 },
  );
  const [events, setEvents] = useState<{ jobId: string; list: CubeEvent[] }>({
    jobId: id,
    list: [],
  });
  const { reload } = job;
  const onEvent = useCallback(
    (e: CubeEvent) => {
      setEvents((s) => {
        const list = s.jobId === id ? s.list : [];
        if (list.some((x) => x.id === e.id)) return s;
        const next = [...list, e];
        if (next.length > 1 && (next.at(-2)?.id ?? 0) > e.id) next.sort((a, b) => a.id - b.id);
        return { jobId: id, list: next };
      });
      if (!e.kind.startsWith('rank-')) reload();
    },
    [id, reload],
  );
  const status = useEventStream(onEvent, { job: id, after: 0 });
  const eventList = useMemo(() => (events.jobId === id ? events.list : []), [events, id]);

  const detail = job.data;
  const running = detail !== null && !ended(detail.state);
  const series = useSeries(id, running);
  const markers = useMemo(() => jobMarkers(eventList, series.points), [eventList, series.points]);

  const nodeList = nodes.data;
  const ranks = useMemo<RankMap | null>(() => {
    if (detail?.placement == null) return null;
    const map = new Map<string, Map<number, number>>();
    for (const p of detail.placement) {
      const m = map.get(p.nodeId) ?? new Map<number, number>();
      m.set(p.localRank, p.rank);
      map.set(p.nodeId, m);
    }
    return map;
  }, [detail?.placement]);
  const nodeName = useCallback(
    (nodeId: string) => nodeList?.find((n) => n.id === nodeId)?.name ?? nodeId,
    [nodeList],
  );

  if (detail === null)
    return job.error === null ? (
      <Loading what={`job ${id}`} />
    ) : (
      <div className="page">
        <ErrorBox what={`job ${id}`} error={job.error} onRetry={job.reload} />
        <Link to="/jobs">All jobs</Link>
      </div>
    );

  const last = series.points.at(-1);
  const total = totalSteps(detail);
  const elapsed =
    detail.startedAt === null ? null : ((detail.endedAt ?? Date.now()) - detail.startedAt) / 1000;
  const lastCkpt = detail.checkpoints.reduce<number | null>(
    (m, c) => (m === null || c.step > m ? c.step : m),
    null,
  );

  return (
    <div className="page" data-page="job" data-job-state={detail.state}>
      <div className="page-head">
        <h1>
          <Link to="/jobs" className="crumb">
            Jobs
          </Link>{' '}
          / {detail.spec.name} <code className="muted small">{detail.id}</code>
        </h1>
        <StateBadge state={detail.state} />
        <LiveBadge status={status} />
      </div>
      {detail.reason === null ? null : <p className="reason">{detail.reason}</p>}
      {job.error === null ? null : (
        <ErrorBox what="the latest job state" error={job.error} onRetry={job.reload} />
      )}
      <div className="tiles">
        <Fact
          label="step"
          testId="fact-step"
          value={last === undefined ? '–' : `${last.step}${total === null ? '' : ` / ${total}`}`}
        />
        <Fact label="loss" value={last?.loss == null ? '–' : last.loss.toFixed(4)} />
        <Fact label="tokens/s" value={running ? si(last?.tokensPerS) : '–'} />
        <Fact label="ranks" value={`${worldSize(detail)} (${detail.spec.deviceType})`} />
        <Fact label="attempt / restarts" value={`${detail.attempt} / ${detail.restarts}`} />
        <Fact label="newest checkpoint" value={lastCkpt === null ? '–' : `step ${lastCkpt}`} />
        <Fact label="running for" value={duration(elapsed)} />
      </div>
      {series.error === null ? null : <ErrorBox what="the job's curve" error={series.error} />}
      <div className="grid-2">
        <Panel title="Loss">
          {series.points.length === 0 ? (
            series.loaded ? (
              <Empty>No progress reported yet.</Empty>
            ) : (
              <Loading what="the curve" />
            )
          ) : (
            <LossChart points={series.points} markers={markers.byStep} />
          )}
        </Panel>
        <Panel title="Throughput">
          {series.points.length === 0 ? (
            series.loaded ? (
              <Empty>No progress reported yet.</Empty>
            ) : (
              <Loading what="the curve" />
            )
          ) : (
            <ThroughputChart
              points={series.points}
              markers={markers.byTime}
              originMs={detail.startedAt ?? series.points[0]?.at ?? 0}
            />
          )}
        </Panel>
      </div>
      <div className="grid-2">
        <Panel title="Events">
          <EventTimeline events={eventList} nodeName={nodeName} />
        </Panel>
        <Panel title="Checkpoints">
          <CheckpointTimeline checkpoints={detail.checkpoints} />
        </Panel>
      </div>
      <Panel title="Placement">
        {ranks === null ? (
          <Empty>Not placed yet{detail.reason === null ? '' : `: ${detail.reason}`}.</Empty>
        ) : nodeList === null ? (
          nodes.error === null ? (
            <Loading what="the cluster" />
          ) : (
            <ErrorBox what="the cluster" error={nodes.error} onRetry={nodes.reload} />
          )
        ) : (
          <>
            <Topology nodes={nodeList} ranks={ranks} height={360} />
            {detail.placementExplanation.length === 0 ? null : (
              <ul className="explanation">
                {detail.placementExplanation.map((line, i) => (
                  <li key={i}>{line}</li>
                ))}
              </ul>
            )}
          </>
        )}
      </Panel>
      <Panel title="Rank logs">
        <RankLogs
          jobId={detail.id}
          worldSize={worldSize(detail)}
          attempts={detail.attempt + 1}
          follow={running}
        />
      </Panel>
    </div>
  );
}

import { useCallback, useMemo, useRef, useState } from 'react';
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
import { useCoalesced } from '../use-coalesced.ts';
import { CheckpointTimeline } from './checkpoint-timeline.tsx';
import { EventTimeline } from './event-timeline.tsx';
import { jobMarkers, LossChart, ThroughputChart } from './job-charts.tsx';
import { PlacementExplanation } from './placement-explanation.tsx';
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
 * Every node a job ran on, in any attempt: its placement now, the placements its
 * `job-scheduled` events recorded, and the nodes its events name (a spare taken, a rank run).
 */
function nodesOfJob(
  events: readonly CubeEvent[],
  placement: readonly { readonly nodeId: string }[],
): ReadonlySet<string> {
  const ids = new Set(placement.map((p) => p.nodeId));
  for (const e of events) {
    if (e.nodeId != null && (e.kind === 'spare-taken' || e.kind.startsWith('rank-')))
      ids.add(e.nodeId);
    const placed = e.data.placement;
    if (Array.isArray(placed))
      for (const p of placed as unknown[])
        if (typeof p === 'object' && p !== null && 'nodeId' in p && typeof p.nodeId === 'string')
          ids.add(p.nodeId);
  }
  return ids;
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
  // A burst of events (a replayed log, a thousand checkpoint commits) is one fetch, not one
  // each: the job's detail carries every checkpoint.
  const reload = useCoalesced(job.reload, 250);
  // Events are taken in batches (one render per 100 ms, not one per event): a job's replayed
  // log holds an event per checkpoint commit, thousands of them.
  const pending = useRef<CubeEvent[]>([]);
  const flush = useCoalesced(() => {
    const batch = pending.current;
    pending.current = [];
    setEvents((s) => {
      const list = s.jobId === id ? s.list : [];
      const known = new Set(list.map((x) => x.id));
      const fresh: CubeEvent[] = [];
      for (const e of batch)
        if (!known.has(e.id)) {
          known.add(e.id);
          fresh.push(e);
        }
      if (fresh.length === 0) return s;
      const next = [...list, ...fresh];
      if (next.some((e, i) => i > 0 && (next[i - 1]?.id ?? 0) > e.id))
        next.sort((a, b) => a.id - b.id);
      return { jobId: id, list: next };
    });
  }, 100);
  const onEvent = useCallback(
    (e: CubeEvent) => {
      if (e.jobId != null && e.jobId !== id) return;
      pending.current.push(e);
      flush();
      if (!e.kind.startsWith('rank-')) reload();
    },
    [id, flush, reload],
  );
  const status = useEventStream(onEvent, { job: id, after: 0 });
  const eventList = useMemo(() => (events.jobId === id ? events.list : []), [events, id]);

  // A node's events (`node-down`, `node-cordoned`, `node-up`, ...) name no job, so the job's
  // stream lacks them: a second stream of every event from the job's first one on keeps those
  // of nodes the job ran on.
  const [nodeEvents, setNodeEvents] = useState<{ jobId: string; list: CubeEvent[] }>({
    jobId: id,
    list: [],
  });
  const onNodeEvent = useCallback(
    (e: CubeEvent) => {
      if (!e.kind.startsWith('node-') || (e.jobId != null && e.jobId !== id)) return;
      setNodeEvents((s) => {
        const list = s.jobId === id ? s.list : [];
        if (list.some((x) => x.id === e.id)) return s;
        return { jobId: id, list: [...list, e] };
      });
      reload();
    },
    [id, reload],
  );
  const firstEventId = eventList[0]?.id ?? null;
  useEventStream(onNodeEvent, {
    after: Math.max(0, (firstEventId ?? 1) - 1),
    enabled: firstEventId !== null,
  });

  const detail = job.data;
  const running = detail !== null && !ended(detail.state);
  const series = useSeries(id, running);
  const markers = useMemo(() => jobMarkers(eventList, series.points), [eventList, series.points]);

  const jobNodes = useMemo(
    () => nodesOfJob(eventList, detail?.placement ?? []),
    [eventList, detail?.placement],
  );
  const endedAt = detail?.endedAt ?? null;
  const timeline = useMemo(() => {
    const seen = new Set(eventList.map((e) => e.id));
    const extra = (nodeEvents.jobId === id ? nodeEvents.list : []).filter(
      (e) =>
        !seen.has(e.id) &&
        e.nodeId != null &&
        jobNodes.has(e.nodeId) &&
        (endedAt === null || Date.parse(e.at) <= endedAt),
    );
    return extra.length === 0 ? eventList : [...eventList, ...extra].sort((a, b) => a.id - b.id);
  }, [eventList, nodeEvents, id, jobNodes, endedAt]);

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
          <EventTimeline events={timeline} nodeName={nodeName} />
        </Panel>
        <Panel title="Checkpoints">
          <CheckpointTimeline checkpoints={detail.checkpoints} />
        </Panel>
      </div>
      <Panel title={`Placement of attempt ${detail.attempt}`}>
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
            <PlacementExplanation lines={detail.placementExplanation} attempt={detail.attempt} />
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

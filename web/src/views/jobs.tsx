import { useCallback, useMemo } from 'react';
import { useClient } from '../api/client-context.tsx';
import { useEventStream } from '../api/use-event-stream.ts';
import { useResource } from '../api/use-resource.ts';
import type { CubeEvent, Job, LatestPoint } from '../api/types.ts';
import { LiveBadge } from '../components/live-badge.tsx';
import { StateBadge } from '../components/state-badge.tsx';
import { Empty, ErrorBox, Loading, Panel } from '../components/states.tsx';
import { ago, si } from '../format.ts';
import { ended, totalSteps, worldSize } from '../job-facts.ts';
import { Link } from '../router.tsx';

/** How far a job got: its step, and a bar when its command names the number of steps. */
export function ProgressCell(props: { job: Job; point: LatestPoint | undefined }) {
  const { job, point } = props;
  const total = totalSteps(job);
  const step = point?.step ?? null;
  const done = job.state === 'succeeded' && total !== null ? total : step;
  if (done === null) return <span className="muted">–</span>;
  const fraction = total === null ? null : Math.min(1, done / total);
  return (
    <div className="progress" title={total === null ? `step ${done}` : `step ${done} of ${total}`}>
      {fraction === null ? null : (
        <div className="progress-bar">
          <div style={{ width: `${(fraction * 100).toFixed(1)}%` }} />
        </div>
      )}
      <span>
        {done}
        {total === null ? '' : ` / ${total}`}
      </span>
    </div>
  );
}

/** Every job: state, progress, loss and throughput, live. */
export function JobsView() {
  const client = useClient();
  const jobs = useResource(
    'jobs',
    (signal) => client.get<{ jobs: Job[] }>('/jobs', { signal }).then((r) => r.jobs),
    { intervalMs: 10_000 },
  );
  const latest = useResource(
    'latest',
    (signal) =>
      client
        .get<{ latest: LatestPoint[] }>('/progress/latest', { signal })
        .then((r) => new Map(r.latest.map((p) => [p.jobId, p]))),
    { intervalMs: 2000 },
  );
  const { reload } = jobs;
  const onEvent = useCallback(
    (e: CubeEvent) => {
      if (e.kind.startsWith('job-')) reload();
    },
    [reload],
  );
  const status = useEventStream(onEvent);
  const rows = useMemo(() => (jobs.data === null ? null : [...jobs.data].reverse()), [jobs.data]);
  const now = Date.now();

  if (rows === null)
    return jobs.error === null ? (
      <Loading what="jobs" />
    ) : (
      <ErrorBox what="jobs" error={jobs.error} onRetry={jobs.reload} />
    );
  return (
    <div className="page" data-page="jobs">
      <div className="page-head">
        <h1>Jobs</h1>
        <LiveBadge status={status} />
      </div>
      {jobs.error === null ? null : (
        <ErrorBox what="the latest job list" error={jobs.error} onRetry={jobs.reload} />
      )}
      {rows.length === 0 ? (
        <Empty>
          No jobs yet. Submit one with <code>cube submit job.yaml</code> (see{' '}
          <code>docs/control-protocol.md</code> for the spec).
        </Empty>
      ) : (
        <Panel title={`${rows.length} job${rows.length === 1 ? '' : 's'}`}>
          <table className="table" data-testid="job-table">
            <thead>
              <tr>
                <th>name</th>
                <th>id</th>
                <th>state</th>
                <th>progress</th>
                <th>loss</th>
                <th>tokens/s</th>
                <th>ranks</th>
                <th>restarts</th>
                <th>submitted</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((job) => {
                const point = latest.data?.get(job.id);
                return (
                  <tr key={job.id} data-job={job.id}>
                    <td>
                      <Link to={`/jobs/${job.id}`}>{job.spec.name}</Link>
                    </td>
                    <td>
                      <code>{job.id}</code>
                    </td>
                    <td>
                      <StateBadge state={job.state} />
                      {job.reason !== null && !ended(job.state) && job.state === 'queued' ? (
                        <div className="muted small">{job.reason}</div>
                      ) : null}
                    </td>
                    <td>
                      <ProgressCell job={job} point={point} />
                    </td>
                    <td>
                      {point?.loss === null || point === undefined ? '–' : point.loss.toFixed(4)}
                    </td>
                    <td>{ended(job.state) ? '–' : si(point?.tokensPerS)}</td>
                    <td>{worldSize(job)}</td>
                    <td>{job.restarts}</td>
                    <td>{ago(job.createdAt, now)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </Panel>
      )}
    </div>
  );
}

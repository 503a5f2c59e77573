import { useMemo, useState, type FormEvent } from 'react';
import type uPlot from 'uplot';
import { useClient } from '../api/client-context.tsx';
import type { SimulationReport } from '../api/types.ts';
import { useChoices } from '../api/use-choices.ts';
import { BarChart } from '../components/bar-chart.tsx';
import { ModelFields, type ModelFieldsValue } from '../components/model-fields.tsx';
import { Empty, ErrorBox, Loading, Panel } from '../components/states.tsx';
import { UPlotChart, type ChartOptions } from '../components/uplot-chart.tsx';
import { duration, percent } from '../format.ts';

/**
 * Policies to compare, as in examples/sim/policies.yaml (every field the simulator's; what a
 * policy leaves out takes the three-level defaults).
 */
const presets: readonly { name: string; description: string; spec: Record<string, unknown> }[] = [
  {
    name: 'three-level-async',
    description:
      'L1 snapshot every 10 min, replicated to a peer (L2), persisted about every 30 min',
    spec: { name: 'three-level-async', interval: { minutes: 10 } },
  },
  {
    name: 'sync-storage-only',
    description: 'synchronous checkpoints straight to storage every 30 min',
    spec: {
      name: 'sync-storage-only',
      interval: { minutes: 30 },
      l1: { enabled: false },
      l2: { enabled: false },
      l3: { blocking: true },
    },
  },
  {
    name: 'three-level-no-spares',
    description: 'three-level without hot spares (a node loss waits for a repair)',
    spec: { name: 'three-level-no-spares', interval: { minutes: 10 }, spares: { nodes: 0 } },
  },
  {
    name: 'three-level-young-daly',
    description: 'three-level, snapshot interval at the Young-Daly optimum',
    spec: { name: 'three-level-young-daly', interval: 'young-daly' },
  },
  {
    name: 'three-level-hourly',
    description: 'three-level with an hourly snapshot',
    spec: { name: 'three-level-hourly', interval: { minutes: 60 } },
  },
];

type PolicyResult = SimulationReport['policies'][number];

/** Short names for the lost-time categories. */
const lostNames: Readonly<Record<string, string>> = {
  checkpointStall: 'ckpt stall',
  checkpointInterference: 'ckpt slowdown',
};

const palette = ['#2a6fdb', '#d6342c', '#1d8f4e', '#e09b1a', '#7a3fd1', '#444c58'];

/** Cumulative goodput (training time done over wall time) per policy, against days. */
function GoodputChart(props: { policies: readonly PolicyResult[] }) {
  const names = props.policies.map((p) => p.policy).join('\u0000');
  const options = useMemo<ChartOptions>(
    () => ({
      scales: { x: { time: false } },
      axes: [
        { label: 'days' },
        { label: 'goodput', size: 60, values: (_u, t) => t.map((v) => percent(v, 1)) },
      ],
      series: [
        { label: 'day' },
        ...names.split('\u0000').map((name, i) => ({
          label: name,
          stroke: palette[i % palette.length] ?? '#444',
          width: 2,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => (v == null ? '–' : percent(v, 2)),
        })),
      ],
    }),
    [names],
  );
  const data = useMemo<uPlot.AlignedData>(() => {
    const first = props.policies[0];
    if (first === undefined) return [[]];
    const idx = first.progress.timesHours.map((_, i) => i).filter((i) => i > 0);
    return [
      idx.map((i) => (first.progress.timesHours[i] ?? 0) / 24),
      ...props.policies.map((p) =>
        idx.map((i) => {
          const t = p.progress.timesHours[i] ?? 0;
          return t > 0 ? (p.progress.mean[i] ?? 0) / t : null;
        }),
      ),
    ];
  }, [props.policies]);
  return <UPlotChart label="goodput over time" options={options} data={data} height={280} />;
}

/**
 * The simulator: a job on a cluster over days, with failures, checkpoints and recoveries;
 * goodput over time and the time lost by category, for the policies chosen side by side.
 */
export function SimulatorView() {
  const client = useClient();
  const choices = useChoices();
  const [form, setForm] = useState<ModelFieldsValue>({
    model: 'llama-3.1-70b',
    accelerator: 'h100-sxm',
    gpus: 1024,
  });
  const [days, setDays] = useState(30);
  const [trials, setTrials] = useState(20);
  const [selected, setSelected] = useState<readonly string[]>([
    'three-level-async',
    'sync-storage-only',
  ]);
  const [answer, setAnswer] = useState<SimulationReport | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const policies = presets.filter((p) => selected.includes(p.name)).map((p) => p.spec);
    client
      .post<SimulationReport>('/simulate', {
        ...form,
        days,
        trials,
        ...(policies.length === 0 ? {} : { policies }),
      })
      .then(
        (a) => {
          setAnswer(a);
          setBusy(false);
        },
        (err: unknown) => {
          setError(err instanceof Error ? err : new Error(String(err)));
          setBusy(false);
        },
      );
  };

  if (choices.data === null)
    return choices.error === null ? (
      <Loading what="the models and accelerators" />
    ) : (
      <ErrorBox what="the simulator's choices" error={choices.error} onRetry={choices.reload} />
    );
  const base = answer?.policies[0];
  const lost = base === undefined ? [] : Object.entries(base.lostHours);

  return (
    <div className="page" data-page="simulator">
      <div className="page-head">
        <h1>Simulator</h1>
      </div>
      <Panel title="Job and cluster">
        <form className="form-row" onSubmit={submit}>
          <ModelFields choices={choices.data} value={form} onChange={setForm} />
          <label>
            days
            <input
              aria-label="days"
              type="number"
              min={1}
              max={90}
              value={days}
              onChange={(e) => setDays(Number(e.target.value))}
              style={{ width: 80 }}
            />
          </label>
          <label>
            trials
            <input
              aria-label="trials"
              type="number"
              min={1}
              max={200}
              value={trials}
              onChange={(e) => setTrials(Number(e.target.value))}
              style={{ width: 80 }}
            />
          </label>
          <button type="submit" disabled={busy}>
            {busy ? 'Simulating…' : 'Simulate'}
          </button>
        </form>
        <fieldset className="policies">
          <legend>policies compared (the first chosen is the baseline)</legend>
          {presets.map((p) => (
            <label key={p.name} className="check" title={p.description}>
              <input
                type="checkbox"
                checked={selected.includes(p.name)}
                onChange={(e) =>
                  setSelected((s) =>
                    e.target.checked ? [...s, p.name] : s.filter((n) => n !== p.name),
                  )
                }
              />{' '}
              {p.name} <span className="muted">: {p.description}</span>
            </label>
          ))}
        </fieldset>
      </Panel>
      {error === null ? null : <ErrorBox what="the simulation" error={error} />}
      {busy ? <Loading what="the simulation (a few seconds)" /> : null}
      {answer === null || base === undefined ? (
        busy ? null : (
          <Empty>Choose a job and the policies to compare, then Simulate.</Empty>
        )
      ) : (
        <>
          <div className="tiles">
            <div className="tile">
              <div className="tile-value">{percent(answer.goodput.mean)}</div>
              <div className="tile-label">
                goodput ({percent(answer.goodput.p5)} – {percent(answer.goodput.p95)})
              </div>
            </div>
            <div className="tile">
              <div className="tile-value">{answer.interruptions.mean.toFixed(1)}</div>
              <div className="tile-label">interruptions in {answer.days} days</div>
            </div>
            <div className="tile">
              <div className="tile-value">{answer.humanInterventions.mean.toFixed(2)}</div>
              <div className="tile-label">human interventions</div>
            </div>
            {Object.entries(answer.pNoFault).map(([d, p]) => (
              <div className="tile" key={d}>
                <div className="tile-value">{percent(p, 0)}</div>
                <div className="tile-label">P(no fault in {d} days)</div>
              </div>
            ))}
            <div className="tile">
              <div className="tile-value">{duration(answer.stepTimeS)}</div>
              <div className="tile-label">step time ({answer.nodes} nodes)</div>
            </div>
          </div>
          <div className="grid-2">
            <Panel title="Goodput over time">
              <GoodputChart policies={answer.policies} />
            </Panel>
            <Panel title={`Time lost by category (${base.policy}, hours)`}>
              <BarChart
                label="time lost by category"
                categories={lost.map(([k]) => lostNames[k] ?? k)}
                values={lost.map(([, v]) => v)}
                unit="hours"
                colour="#d6342c"
              />
            </Panel>
          </div>
          <Panel title="Policies compared">
            <table className="table" data-testid="policy-table">
              <thead>
                <tr>
                  <th>policy</th>
                  <th>levels</th>
                  <th>interval</th>
                  <th>spares</th>
                  <th>goodput</th>
                  <th>interruptions</th>
                  <th>human</th>
                  <th>hours lost</th>
                </tr>
              </thead>
              <tbody>
                {answer.policies.map((p) => (
                  <tr key={p.policy}>
                    <td>{p.policy}</td>
                    <td>{p.levels}</td>
                    <td title={p.intervalReason}>{p.intervalMinutes.toFixed(1)} min</td>
                    <td>{p.spareNodes}</td>
                    <td>
                      {percent(p.goodput.mean, 2)}{' '}
                      <span className="muted small">
                        ({percent(p.goodput.p5)} – {percent(p.goodput.p95)})
                      </span>
                    </td>
                    <td>{p.interruptions.mean.toFixed(1)}</td>
                    <td>{p.humanInterventions.mean.toFixed(2)}</td>
                    <td>
                      {Object.values(p.lostHours)
                        .reduce((a, b) => a + b, 0)
                        .toFixed(1)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p className="muted small">
              {answer.trials} trials of {answer.days} days, failure model: {answer.failureModel}.
            </p>
          </Panel>
        </>
      )}
    </div>
  );
}

import { useState, type FormEvent } from 'react';
import { ApiError } from '../api/client.ts';
import type { PlanResult } from '../api/types.ts';
import { useClient } from '../api/client-context.tsx';
import { useChoices } from '../api/use-choices.ts';
import { BarChart } from '../components/bar-chart.tsx';
import { ModelFields, type ModelFieldsValue } from '../components/model-fields.tsx';
import { Empty, ErrorBox, Loading, Panel } from '../components/states.tsx';
import { percent, si } from '../format.ts';

/** One plan as `POST /plan` (and `cube plan --json`) answers it. */
export type PlanView = PlanResult['plans'][number];

/** "tp2 pp4x2 dp8 cp2": the plan's layout in one word per dimension. */
export function layoutOf(p: PlanView): string {
  const parts = [`tp${p.tp}`, `pp${p.pp}${p.vpp > 1 ? `x${p.vpp}` : ''}`, `dp${p.dp}`];
  if (p.cp > 1) parts.push(`cp${p.cp}`);
  if (p.ep > 1) parts.push(`ep${p.ep}`);
  return parts.join(' ');
}

const gib = 1024 ** 3;

function Breakdowns(props: { plan: PlanView; memoryGiB: number | null }) {
  const { plan, memoryGiB } = props;
  const memory = Object.entries(plan.memory).filter(([, v]) => v > 0);
  const time = Object.entries(plan.time).filter(([, v]) => v > 0);
  return (
    <div className="grid-2">
      <Panel
        title={`Memory per GPU: ${plan.memoryGiB.toFixed(1)} GiB${memoryGiB === null ? '' : ` of ${memoryGiB}`}`}
      >
        <BarChart
          label="memory breakdown"
          categories={memory.map(([k]) => k)}
          values={memory.map(([, v]) => v / gib)}
          unit="GiB"
          colour="#2a6fdb"
        />
      </Panel>
      <Panel title={`Step time: ${plan.stepTimeS.toFixed(3)} s`}>
        <BarChart
          label="step-time breakdown"
          categories={time.map(([k]) => k)}
          values={time.map(([, v]) => v)}
          unit="seconds"
          colour="#7a3fd1"
        />
      </Panel>
    </div>
  );
}

/**
 * The planner: a model, an accelerator and a GPU count in; ranked plans out, and for the
 * chosen one where its memory and step time go.
 */
export function PlannerView() {
  const client = useClient();
  const choices = useChoices();
  const [form, setForm] = useState<ModelFieldsValue>({
    model: 'llama-3.1-8b',
    accelerator: 'h100-sxm',
    gpus: 64,
  });
  const [seqLen, setSeqLen] = useState('');
  const [answer, setAnswer] = useState<PlanResult | null>(null);
  const [chosen, setChosen] = useState(0);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    client
      .post<PlanResult>('/plan', {
        ...form,
        ...(seqLen.trim() === '' ? {} : { seqLen: Number(seqLen) }),
        top: 10,
      })
      .then(
        (a) => {
          setAnswer(a);
          setChosen(0);
          setBusy(false);
        },
        (err: unknown) => {
          setError(err instanceof Error ? err : new ApiError(0, 'UNKNOWN', String(err)));
          setBusy(false);
        },
      );
  };

  if (choices.data === null)
    return choices.error === null ? (
      <Loading what="the models and accelerators" />
    ) : (
      <ErrorBox what="the planner's choices" error={choices.error} onRetry={choices.reload} />
    );
  const accelerator = choices.data.accelerators.find((a) => a.id === answer?.accelerator);
  const plan = answer?.plans[chosen];

  return (
    <div className="page" data-page="planner">
      <div className="page-head">
        <h1>Planner</h1>
      </div>
      <Panel title="Job">
        <form className="form-row" onSubmit={submit}>
          <ModelFields choices={choices.data} value={form} onChange={setForm} />
          <label>
            sequence length
            <input
              aria-label="sequence length"
              type="number"
              min={1}
              placeholder="default 4096"
              value={seqLen}
              onChange={(e) => setSeqLen(e.target.value)}
              style={{ width: 120 }}
            />
          </label>
          <button type="submit" disabled={busy}>
            {busy ? 'Planning…' : 'Plan'}
          </button>
        </form>
      </Panel>
      {error === null ? null : <ErrorBox what="plans" error={error} />}
      {busy ? <Loading what="plans" /> : null}
      {answer === null ? (
        busy ? null : (
          <Empty>Choose a model, an accelerator and a GPU count, then Plan.</Empty>
        )
      ) : answer.plans.length === 0 ? (
        <Empty>
          No plan fits {answer.model} on {answer.gpus} × {answer.accelerator}: {answer.reason}
        </Empty>
      ) : (
        <>
          <Panel
            title={`${answer.model} on ${answer.gpus} × ${answer.accelerator}: sequence ${answer.seqLen}, global batch ${answer.globalBatch}`}
          >
            <table className="table" data-testid="plan-table">
              <thead>
                <tr>
                  <th>#</th>
                  <th>layout</th>
                  <th>zero</th>
                  <th>mb × ga</th>
                  <th>recompute</th>
                  <th>offload</th>
                  <th>GiB</th>
                  <th>step s</th>
                  <th>tokens/s</th>
                  <th>TFLOPS/GPU</th>
                  <th>MFU</th>
                  <th>scaling</th>
                </tr>
              </thead>
              <tbody>
                {answer.plans.map((p, i) => (
                  <tr
                    key={i}
                    className={i === chosen ? 'row-selected' : undefined}
                    onClick={() => setChosen(i)}
                    style={{ cursor: 'pointer' }}
                  >
                    <td>{i + 1}</td>
                    <td>
                      {layoutOf(p)}
                      {p.sp ? ' sp' : ''}
                    </td>
                    <td>{p.zero}</td>
                    <td>
                      {p.microBatch} × {p.gradAccum}
                    </td>
                    <td>{p.recompute}</td>
                    <td>{p.offload}</td>
                    <td>{p.memoryGiB.toFixed(1)}</td>
                    <td>{p.stepTimeS.toFixed(3)}</td>
                    <td>{si(p.tokensPerS)}</td>
                    <td>{p.tflopsPerGpu.toFixed(0)}</td>
                    <td>{percent(p.mfu)}</td>
                    <td>{percent(p.scalingEfficiency)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p className="muted small">Click a plan to see its breakdowns.</p>
          </Panel>
          {plan === undefined ? null : (
            <Breakdowns plan={plan} memoryGiB={accelerator?.memoryGiB ?? null} />
          )}
        </>
      )}
    </div>
  );
}

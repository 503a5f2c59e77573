import type { Choices } from '../api/use-choices.ts';
import { si } from '../format.ts';

/** What the planner and the simulator both ask: model, accelerator and GPU count. */
export interface ModelFieldsValue {
  readonly model: string;
  readonly accelerator: string;
  readonly gpus: number;
}

/** The model, accelerator and GPU-count fields, from the server's catalog. */
export function ModelFields(props: {
  choices: Choices;
  value: ModelFieldsValue;
  onChange: (value: ModelFieldsValue) => void;
}) {
  const { choices, value, onChange } = props;
  const families = new Map<string, Choices['models'][number][]>();
  for (const m of choices.models) {
    const f = m.family ?? 'other';
    families.set(f, [...(families.get(f) ?? []), m]);
  }
  return (
    <>
      <label>
        model
        <select
          aria-label="model"
          value={value.model}
          onChange={(e) => onChange({ ...value, model: e.target.value })}
        >
          {[...families.entries()].map(([family, models]) => (
            <optgroup key={family} label={family}>
              {models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id} ({si(m.params)} params
                  {m.activeParams === m.params ? '' : `, ${si(m.activeParams)} active`})
                </option>
              ))}
            </optgroup>
          ))}
        </select>
      </label>
      <label>
        accelerator
        <select
          aria-label="accelerator"
          value={value.accelerator}
          onChange={(e) => onChange({ ...value, accelerator: e.target.value })}
        >
          {choices.accelerators.map((a) => (
            <option key={a.id} value={a.id}>
              {a.id} ({a.name}, {a.memoryGiB} GiB)
            </option>
          ))}
        </select>
      </label>
      <label>
        GPUs
        <input
          aria-label="GPUs"
          type="number"
          min={1}
          max={100000}
          step={1}
          value={value.gpus}
          onChange={(e) =>
            onChange({ ...value, gpus: Math.max(1, Math.round(Number(e.target.value))) })
          }
          style={{ width: 100 }}
        />
      </label>
    </>
  );
}

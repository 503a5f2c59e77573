import { activationBytes } from './activations.ts';
import { modelOverlay } from './catalog.ts';
import { forwardFlopsPerToken, trainingFlopsPerToken } from './flops.ts';
import { trainingStateBytes, trainingRecipes } from './memory.ts';
import type { AttentionSpan, LayerSpec, ModelArchitecture } from './model.ts';
import { parameterBreakdown, type ParameterBreakdown } from './params.ts';
import { compareWithReported, type ReportedComparison } from './reported.ts';

/** One row of `cube zoo --json` (the design.md contract: exactly these keys). */
export interface ZooEntry {
  readonly id: string;
  readonly family: string | null;
  readonly params: number;
  readonly activeParams: number;
  readonly layers: number;
  readonly hidden: number;
  readonly heads: number;
  readonly kvHeads: number;
  /** The dense FFN width when the model has dense layers, else the routed-expert width. */
  readonly ffn: number;
  readonly vocab: number;
  /** Routed experts per MoE layer; null for dense models. */
  readonly experts: number | null;
  readonly expertsPerToken: number | null;
}

function firstMoe(model: ModelArchitecture): Extract<LayerSpec['mlp'], { kind: 'moe' }> | null {
  for (const l of model.layers) if (l.mlp.kind === 'moe') return l.mlp;
  return null;
}

/** The contract row for a model. */
export function zooEntry(model: ModelArchitecture): ZooEntry {
  const b = parameterBreakdown(model);
  const moe = firstMoe(model);
  return {
    id: model.id,
    family: model.family,
    params: b.total,
    activeParams: b.active,
    layers: model.layers.length,
    hidden: model.hiddenSize,
    heads: model.numAttentionHeads,
    kvHeads: model.numKeyValueHeads,
    ffn: model.intermediateSize ?? moe?.expertIntermediateSize ?? 0,
    vocab: model.vocabSize,
    experts: moe?.experts ?? null,
    expertsPerToken: moe?.expertsPerToken ?? null,
  };
}

function describeSpan(span: AttentionSpan): string {
  switch (span.kind) {
    case 'full':
      return 'full';
    case 'sliding':
      return `sliding ${span.windowTokens}`;
    case 'chunked':
      return `chunked ${span.chunkTokens}`;
    default:
      return span satisfies never;
  }
}

/** A one-line description of a layer's attention and MLP. */
export function describeLayer(model: ModelArchitecture, layer: LayerSpec): string {
  const a = layer.attention;
  let attention: string;
  switch (a.kind) {
    case 'softmax': {
      const kind = a.kvHeads === a.heads ? 'MHA' : a.kvHeads === 1 ? 'MQA' : `GQA ${a.kvHeads} kv`;
      attention = `${kind} ${a.heads}x${a.headDim}, ${describeSpan(a.span)}`;
      break;
    }
    case 'mla':
      attention = `MLA ${a.heads} heads (q rank ${a.qLoraRank ?? 'direct'}, kv rank ${a.kvLoraRank}), ${describeSpan(a.span)}`;
      break;
    case 'linear':
      attention = `linear ${a.heads}x${a.headDim}${a.outputGate ? ' gated' : ''}`;
      break;
    default:
      attention = a satisfies never;
  }
  const m = layer.mlp;
  const act = model.mlpActivation;
  const mlp =
    m.kind === 'dense'
      ? `dense ${m.gated ? 'gated ' : ''}${act} ${m.intermediateSize}`
      : `MoE ${m.experts}x${m.expertIntermediateSize} top-${m.expertsPerToken}${m.sharedIntermediateSize > 0 ? ` + shared ${m.sharedIntermediateSize}` : ''}`;
  return `${attention} | ${mlp}`;
}

function ranges(indices: readonly number[]): string {
  const out: string[] = [];
  let start = indices[0];
  let prev = start;
  for (const i of [...indices.slice(1), Number.NaN]) {
    if (start === undefined || prev === undefined) break;
    if (i === prev + 1) {
      prev = i;
      continue;
    }
    out.push(start === prev ? `${start}` : `${start}-${prev}`);
    start = i;
    prev = i;
  }
  return out.join(',');
}

/** Layers grouped by identical description. */
export function layerGroups(
  model: ModelArchitecture,
): readonly { readonly description: string; readonly count: number; readonly layers: string }[] {
  const groups = new Map<string, number[]>();
  for (const layer of model.layers) {
    const d = describeLayer(model, layer);
    const list = groups.get(d) ?? [];
    list.push(layer.index);
    groups.set(d, list);
  }
  return [...groups].map(([description, list]) => ({
    description,
    count: list.length,
    layers: ranges(list),
  }));
}

/** The sequence lengths `cube zoo show` reports FLOPs at. */
export const reportSeqLens = [2048, 8192, 32768] as const;
/** The shape `cube zoo show` reports activations for. */
export const reportActivationShape = { seqLen: 4096, microBatch: 1 } as const;

/** Everything `cube zoo show --json` prints. */
export interface ModelReport {
  readonly entry: ZooEntry;
  readonly model: ModelArchitecture;
  readonly layerGroups: ReturnType<typeof layerGroups>;
  readonly structure: readonly {
    readonly key: string;
    readonly value: unknown;
    readonly reason: string;
  }[];
  readonly params: ParameterBreakdown;
  readonly reported: ReportedComparison;
  readonly flopsPerToken: readonly {
    readonly seqLen: number;
    readonly forwardCausalFlops: number;
    readonly trainingCausalFlops: number;
    readonly trainingMegatronFlops: number;
  }[];
  readonly stateBytes: readonly {
    readonly recipe: string;
    readonly bytesPerParam: number;
    readonly weightBytes: number;
    readonly gradientBytes: number;
    readonly optimizerBytes: number;
    readonly totalBytes: number;
  }[];
  readonly activations: {
    readonly seqLen: number;
    readonly microBatch: number;
    readonly tp: 1;
    readonly bytes: { readonly none: number; readonly selective: number; readonly full: number };
  };
}

function overlayFacts(id: string): ModelReport['structure'] {
  const overlay = modelOverlay(id);
  if (overlay === undefined) return [];
  const facts: { key: string; value: unknown; reason: string }[] = [];
  for (const [key, f] of Object.entries(overlay)) {
    if (key === 'moe') {
      for (const [k, g] of Object.entries(f as Record<string, { value: unknown; reason: string }>))
        facts.push({ key: `moe.${k}`, value: g.value, reason: g.reason });
    } else {
      const g = f as { value: unknown; reason: string };
      facts.push({ key, value: g.value, reason: g.reason });
    }
  }
  return facts;
}

/** The full report of one model. */
export function modelReport(model: ModelArchitecture): ModelReport {
  const params = parameterBreakdown(model);
  const shape = reportActivationShape;
  return {
    entry: zooEntry(model),
    model,
    layerGroups: layerGroups(model),
    structure: overlayFacts(model.id),
    params,
    reported: compareWithReported(model),
    flopsPerToken: reportSeqLens.map((seqLen) => ({
      seqLen,
      forwardCausalFlops: forwardFlopsPerToken(model, { seqLen, causal: true }).totalFlops,
      trainingCausalFlops: trainingFlopsPerToken(model, { seqLen, causal: true }),
      trainingMegatronFlops: trainingFlopsPerToken(model, { seqLen, causal: false }),
    })),
    stateBytes: Object.values(trainingRecipes).map((r) => ({
      recipe: r.id,
      bytesPerParam: r.weightBytes + r.gradientBytes + r.masterWeightBytes + r.optimizerStateBytes,
      ...trainingStateBytes(params.total, { recipe: r }),
    })),
    activations: {
      ...shape,
      tp: 1,
      bytes: {
        none: activationBytes(model, { ...shape, recompute: 'none' }),
        selective: activationBytes(model, { ...shape, recompute: 'selective' }),
        full: activationBytes(model, { ...shape, recompute: 'full' }),
      },
    },
  };
}

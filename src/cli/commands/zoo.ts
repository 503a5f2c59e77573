import type { Command } from 'commander';
import { CubeError } from '../../core/index.ts';
import {
  listModels,
  loadModelFile,
  modelReport,
  resolveModel,
  zooEntry,
  type ModelArchitecture,
  type ModelReport,
  type Positions,
} from '../../zoo/index.ts';
import { printJson, renderTable, type CliOutput } from '../output.ts';

const gib = 1024 ** 3;

function billions(n: number): string {
  if (n < 1e9) return `${(n / 1e6).toFixed(n >= 1e8 ? 1 : 2)}M`;
  return `${(n / 1e9).toFixed(n >= 1e11 ? 1 : n >= 1e10 ? 2 : 3)}B`;
}

function exactCount(n: number): string {
  return n.toLocaleString('en-US');
}

function gibString(bytes: number): string {
  return `${(bytes / gib).toFixed(bytes >= 100 * gib ? 0 : 2)} GiB`;
}

function describePositions(p: Positions): string {
  switch (p.kind) {
    case 'rope':
      return `rope${p.rotaryFraction === 1 ? '' : ` (rotary fraction ${Number(p.rotaryFraction.toFixed(3))})`}${p.noRopeLayerInterval === null ? '' : `, no rope every ${p.noRopeLayerInterval}th layer`}`;
    case 'learned':
      return `learned (${p.rows} rows)`;
    case 'alibi':
    case 'none':
      return p.kind;
    default:
      return p satisfies never;
  }
}

function describeArchitecture(m: ModelArchitecture): string[] {
  const norm =
    m.norm.kind === 'layernorm'
      ? `LayerNorm ${m.norm.bias ? 'with' : 'without'} bias`
      : `RMSNorm${m.norm.unitOffset ? ' (1 + w)' : ''}`;
  const layout =
    m.blockLayout.kind === 'parallel'
      ? `parallel block, ${m.blockLayout.norms} norm${m.blockLayout.norms === 1 ? '' : 's'}`
      : m.blockLayout.kind === 'sandwich'
        ? 'pre + post norms (4 per layer)'
        : `${m.blockLayout.kind}-norm`;
  const qk =
    m.qkNorm.kind === 'none'
      ? 'none'
      : m.qkNorm.kind === 'l2'
        ? 'L2 (no weights)'
        : `${m.qkNorm.kind} (${m.qkNorm.shape})`;
  return [
    `  hidden ${m.hiddenSize}, ${m.layers.length} layers, ${m.numAttentionHeads} heads (${m.numKeyValueHeads} kv) x ${m.headDim}, vocab ${m.vocabSize}, context ${m.maxPositionEmbeddings ?? '-'}`,
    `  norms         ${norm}; ${layout}; final norm ${m.finalNorm ? 'yes' : 'no'}${m.embeddingNorm ? '; embedding norm' : ''}`,
    `  positions     ${describePositions(m.positions)}`,
    `  biases        attention ${m.attentionBias}, mlp ${m.mlpBias ? 'yes' : 'no'}; qk norm ${qk}`,
    `  embeddings    ${m.tiedEmbeddings ? 'tied' : 'untied'}; mlp ${m.gatedMlp ? 'gated ' : ''}${m.mlpActivation}`,
  ];
}

function showText(r: ModelReport): string {
  const m = r.model;
  const p = r.params;
  const lines = [`${m.name} (${m.id})${m.family === null ? '' : `, ${m.family}`}`, 'architecture:'];
  lines.push(...describeArchitecture(m));
  lines.push('layers:');
  for (const g of r.layerGroups)
    lines.push(`  ${String(g.count).padStart(3)} x ${g.description}   [${g.layers}]`);
  if (r.structure.length > 0) {
    lines.push('structure (overlay on models.json):');
    for (const f of r.structure) lines.push(`  ${f.key} = ${JSON.stringify(f.value)}: ${f.reason}`);
  }
  lines.push('parameters:');
  const rows: [string, number][] = [
    ['embedding', p.embedding],
    ['attention', p.attention],
    ['dense mlp', p.denseMlp],
    ['routed experts', p.routedExperts],
    ['shared experts', p.sharedExperts],
    ['routers', p.routers],
    ['norms', p.norms],
    ['lm head', p.head],
    ['total', p.total],
    ['active per token', p.active],
  ];
  for (const [label, n] of rows)
    if (n > 0 || label === 'total')
      lines.push(`  ${label.padEnd(17)} ${exactCount(n).padStart(19)}  ${billions(n)}`);
  const cmp = r.reported;
  const fig = (label: string, f: typeof cmp.total): string =>
    `  ${label}: reported ${f.reportedBillions === null ? '-' : `${f.reportedBillions}B`}, computed ${billions(f.computed)}: ${f.agreement}${f.reason === null ? '' : ` (${f.reason})`}`;
  lines.push(
    `reported sizes (${cmp.exact ? 'count confirmed exact' : 'count not confirmed exact'}):`,
  );
  lines.push(fig('total', cmp.total));
  if (cmp.active !== null) lines.push(fig('active', cmp.active));
  lines.push('training FLOPs per token (forward + backward = 3 x forward):');
  lines.push(
    renderTable(
      ['seq len', 'causal', 'megatron (no causal halving)'],
      r.flopsPerToken.map((f) => [
        f.seqLen,
        f.trainingCausalFlops.toExponential(4),
        f.trainingMegatronFlops.toExponential(4),
      ]),
    )
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
  );
  lines.push('weights + grads + optimizer state (unsharded):');
  for (const s of r.stateBytes)
    lines.push(
      `  ${s.recipe.padEnd(22)} ${String(s.bytesPerParam).padStart(2)} B/param  ${gibString(s.totalBytes)}`,
    );
  const a = r.activations;
  lines.push(`activations (seq ${a.seqLen}, micro-batch ${a.microBatch}, tp 1, all layers):`);
  lines.push(
    `  no recompute ${gibString(a.bytes.none)}, selective ${gibString(a.bytes.selective)}, full ${gibString(a.bytes.full)}`,
  );
  lines.push(`source: ${m.source ?? '-'}`);
  if (m.notes !== null && m.notes !== '') lines.push(`notes: ${m.notes}`);
  if (m.unconfirmed.length > 0) lines.push(`unconfirmed: ${m.unconfirmed.join('; ')}`);
  return lines.join('\n');
}

export function registerZooCommands(program: Command, output: CliOutput): void {
  const zoo = program
    .command('zoo')
    .description('the model zoo: architectures, exact parameter counts, FLOPs and memory')
    .option('--json', 'print the zoo as JSON')
    .enablePositionalOptions()
    .action((options: { json?: boolean }) => {
      const entries = listModels().map(zooEntry);
      if (options.json === true) {
        printJson(output, entries);
        return;
      }
      output.out(
        renderTable(
          [
            'id',
            'family',
            'params',
            'active',
            'layers',
            'hidden',
            'heads',
            'kv',
            'ffn',
            'vocab',
            'experts',
          ],
          entries.map((e) => [
            e.id,
            e.family ?? '-',
            billions(e.params),
            billions(e.activeParams),
            e.layers,
            e.hidden,
            e.heads,
            e.kvHeads,
            e.ffn,
            e.vocab,
            e.experts === null ? null : `${e.expertsPerToken ?? '?'}/${e.experts}`,
          ]),
        ),
      );
    });
  zoo
    .command('show')
    .description('one model in full: architecture, parameter breakdown, FLOPs, memory, source')
    .argument('[id]', 'model id (or a model file)')
    .option('--file <path>', 'a model file (JSON or YAML) instead of an id')
    .option('--json', 'print as JSON')
    .action((id: string | undefined, options: { file?: string; json?: boolean }) => {
      if ((id === undefined) === (options.file === undefined))
        throw new CubeError(
          'BAD_FLAG',
          'give either a model id or --file <path>, not both or neither',
          {
            where: { field: 'zoo show' },
          },
        );
      const model =
        options.file !== undefined
          ? loadModelFile(options.file)
          : resolveModel(id ?? '', { field: 'zoo show <id>' });
      const report = modelReport(model);
      if (options.json === true) printJson(output, report);
      else output.out(showText(report));
    });
}

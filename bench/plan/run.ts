/**
 * Planner speed (not a test): a full search for llama-3.1-405b on 16,384 h100-sxm, and every zoo
 * model on 8, 64, 1,024 and 16,384 GPUs. The baseline is measured in the same run: the time to
 * price one candidate from scratch (fresh context, no collective cache) times the size of the
 * naive exhaustive space (every tp, pp, vpp, cp, ep, micro-batch, recompute, ZeRO stage and offload
 * the search considers, without pruning).
 *
 *   npm run bench:plan            # both parts
 *   npm run bench:plan -- --quick # the 405B search only
 */
import { cpus, loadavg } from 'node:os';
import { defaultCluster } from '../../src/hardware/index.ts';
import { planJob } from '../../src/plan/index.ts';
import { planContext } from '../../src/plan/context.ts';
import { evaluateCandidate, type Candidate } from '../../src/plan/evaluate.ts';
import { defaultGlobalBatch, defaultSeqLen } from '../../src/plan/plan-job.ts';
import { divisors, tpFitsHeads } from '../../src/plan/search.ts';
import { getModel, listModels } from '../../src/zoo/index.ts';

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** CPU seconds of this process since `start` (what the machine's other load does not inflate). */
function cpuSeconds(start: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1e6;
}

/** The naive space: every combination the search's dimensions allow, before any pruning. */
function naiveSpace(modelId: string, accelerator: string, gpus: number): Candidate[] {
  const model = getModel(modelId);
  const cluster = defaultCluster({ accelerator, gpus });
  const seqLen = Math.min(defaultSeqLen, model.maxPositionEmbeddings ?? defaultSeqLen);
  const globalBatch = defaultGlobalBatch(gpus);
  const ctx = planContext({
    model,
    cluster,
    seqLen,
    globalBatch,
    precision: 'bf16',
    software: 'modern',
  });
  const L = model.layers.length;
  const out: Candidate[] = [];
  for (const tp of divisors(gpus).filter((t) => t <= 8 && tpFitsHeads(ctx, t)))
    for (const pp of divisors(gpus / tp).filter((p) => p <= L))
      for (const cp of divisors(gpus / (tp * pp)).filter(
        (c) => c === 1 || (c <= 32 && seqLen / c >= 2048),
      )) {
        const dp = gpus / (tp * pp * cp);
        if (globalBatch % dp !== 0) continue;
        const eps = ctx.profile.isMoe
          ? divisors(dp).filter((e) => ctx.profile.experts % e === 0)
          : [1];
        for (const ep of eps)
          for (const vpp of pp === 1
            ? [1]
            : [1, 2, 3, 4, 5, 6, 7, 8].filter((v) => pp * v <= L + 2))
            for (const microBatch of divisors(globalBatch / dp).filter((b) => b <= 16))
              for (const recompute of ['none', 'full'] as const)
                for (const zero of [0, 1, 2, 3] as const)
                  for (const offload of ['none', 'optimizer', 'all'] as const)
                    out.push({
                      tp,
                      pp,
                      vpp,
                      cp,
                      ep,
                      dp,
                      sp: tp > 1,
                      zero,
                      microBatch,
                      recompute,
                      offload,
                    });
      }
  return out;
}

/** Mean seconds to price one candidate from scratch (a fresh context: no cached collectives). */
function coldEvaluationSeconds(
  modelId: string,
  accelerator: string,
  gpus: number,
  sample: readonly Candidate[],
): number {
  const model = getModel(modelId);
  const cluster = defaultCluster({ accelerator, gpus });
  const seqLen = Math.min(defaultSeqLen, model.maxPositionEmbeddings ?? defaultSeqLen);
  const start = process.hrtime.bigint();
  for (const c of sample) {
    const ctx = planContext({
      model,
      cluster,
      seqLen,
      globalBatch: defaultGlobalBatch(gpus),
      precision: 'bf16',
      software: 'modern',
    });
    evaluateCandidate(ctx, c);
  }
  return seconds(start) / sample.length;
}

const quick = process.argv.includes('--quick');

// Part 1: the 405B search.
{
  const model = getModel('llama-3.1-405b');
  const cluster = defaultCluster({ accelerator: 'h100-sxm', gpus: 16384 });
  planJob({
    model: getModel('llama-3.2-1b'),
    cluster: defaultCluster({ accelerator: 'h100-sxm', gpus: 8 }),
  }); // warm the JIT
  const start = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const result = planJob({ model, cluster });
  const cube = seconds(start);
  const cubeCpu = cpuSeconds(cpu0);
  const space = naiveSpace('llama-3.1-405b', 'h100-sxm', 16384);
  const step = Math.max(1, Math.floor(space.length / 40));
  const sample = space.filter((_, i) => i % step === 0);
  const per = coldEvaluationSeconds('llama-3.1-405b', 'h100-sxm', 16384, sample);
  const baseline = per * space.length;
  const best = result.plans[0];
  console.log('llama-3.1-405b on 16,384 h100-sxm (full search, scaling reference included)');
  console.log(
    `  load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')} on ${cpus().length} cores`,
  );
  console.log(
    `  cube plan search           ${cube.toFixed(3)} s wall, ${cubeCpu.toFixed(3)} s CPU  (target < 1 s)`,
  );
  console.log(
    `  naive exhaustive baseline  ${baseline.toFixed(1)} s  (${space.length} candidates x ${(per * 1e3).toFixed(2)} ms cold)`,
  );
  console.log(`  speed-up                   ${(baseline / cube).toFixed(0)}x`);
  if (best !== undefined)
    console.log(
      `  best: tp${best.tp} pp${best.pp}x${best.vpp} dp${best.dp} cp${best.cp} zero${best.zero} mb${best.microBatch} ${best.recompute}: MFU ${(best.mfu * 100).toFixed(1)}%, ${best.stepTimeS.toFixed(2)} s/step`,
    );
}

// Part 2: every zoo model at four scales.
if (!quick) {
  const scales = [8, 64, 1024, 16384];
  let total = 0;
  let feasible = 0;
  let calls = 0;
  let slowest = { id: '', gpus: 0, s: 0 };
  const cpu0 = process.cpuUsage();
  for (const entry of listModels()) {
    for (const gpus of scales) {
      const start = process.hrtime.bigint();
      const r = planJob({
        model: entry,
        cluster: defaultCluster({ accelerator: 'h100-sxm', gpus }),
        top: 10,
      });
      const s = seconds(start);
      total += s;
      calls += 1;
      if (r.plans.length > 0) feasible += 1;
      if (s > slowest.s) slowest = { id: entry.id, gpus, s };
    }
  }
  console.log(`every zoo model (${listModels().length}) on 8, 64, 1,024 and 16,384 h100-sxm`);
  console.log(
    `  load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')} on ${cpus().length} cores`,
  );
  console.log(
    `  cube plan, all ${calls} searches   ${total.toFixed(2)} s wall, ${cpuSeconds(cpu0).toFixed(2)} s CPU  (target < 30 s); ${feasible} with a feasible plan`,
  );
  console.log(`  slowest: ${slowest.id} on ${slowest.gpus} GPUs, ${slowest.s.toFixed(3)} s`);
}

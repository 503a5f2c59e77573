/**
 * Compares the planner's GEMM model (`gemmSeconds`) with bf16 GEMMs measured on a real GPU by
 * bench/plan/measure_gemm.py (the shipped file: an H200, torch 2.11, CUDA 13, measured for this
 * check). Not a test: it prints predicted and measured TFLOPS per shape.
 *
 *   node --import tsx bench/plan/gemm-check.ts [measured.json] [accelerator-id]
 */
import { readFileSync } from 'node:fs';
import { getAccelerator } from '../../src/hardware/index.ts';
import { deviceSpeed, gemmSeconds } from '../../src/plan/kernels.ts';

interface Row {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly seconds: number;
  readonly tflops: number;
}

const file = process.argv[2] ?? new URL('data/h200-gemm.json', import.meta.url).pathname;
const accelerator = process.argv[3] ?? 'h200';
const measured = JSON.parse(readFileSync(file, 'utf8')) as { device: string; rows: Row[] };
const speed = deviceSpeed(getAccelerator(accelerator), 'bf16');
if (speed === null) throw new Error(`${accelerator} has no bf16 path`);
console.log(`${measured.device} (measured) vs the planner's ${accelerator} model`);
console.log('shape (m x n x k)          measured TFLOPS  predicted TFLOPS  predicted/measured');
for (const r of measured.rows) {
  const predicted = (2 * r.m * r.n * r.k) / gemmSeconds(speed, r.m, r.n, r.k) / 1e12;
  console.log(
    `${`${r.m} x ${r.n} x ${r.k}`.padEnd(26)} ${r.tflops.toFixed(0).padStart(15)}  ${predicted.toFixed(0).padStart(16)}  ${(predicted / r.tflops).toFixed(2).padStart(18)}`,
  );
}

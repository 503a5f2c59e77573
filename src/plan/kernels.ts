import type { Accelerator } from '../hardware/index.ts';
import type { Precision } from './types.ts';

/**
 * How fast the kernels of a training step run on one accelerator, from first principles:
 * matrix products at the chip's peak times a ceiling (what the best-shaped GEMM reaches) times a
 * shape factor (tile padding and too few tiles to fill the chip), bounded below by the time to
 * move their operands through HBM (a roofline); element-wise work, norms and softmax at the
 * achievable HBM bandwidth; and a fixed gap per kernel launch.
 */

/** Per-accelerator kernel facts the catalog does not hold. Each value says where it comes from. */
export interface KernelFacts {
  /** Fraction of the dense peak the best-shaped large GEMM reaches (max achievable matmul FLOPS). */
  readonly gemmCeiling: number;
  /** Streaming multiprocessors / compute units: a GEMM with fewer output tiles leaves some idle. */
  readonly computeUnits: number;
  /** Fraction of HBM bandwidth element-wise kernels reach. */
  readonly memoryEfficiency: number;
  readonly source: string;
}

const nvidiaAmpere: KernelFacts = {
  gemmCeiling: 0.79,
  computeUnits: 108,
  memoryEfficiency: 0.8,
  source:
    'A100: under sustained full load the clock settles near 1,305 MHz (the clock NVIDIA quotes for HPL) against the 1,410 MHz boost the 312 TFLOPS peak assumes (x0.93), and cuBLAS reaches ~85% of the tensor-core rate at that clock on large fp16/bf16 GEMMs: 0.93 x 0.85 = 0.79; 108 SMs; streaming kernels ~80% of HBM bandwidth',
};
const nvidiaHopper: KernelFacts = {
  gemmCeiling: 0.75,
  computeUnits: 132,
  memoryEfficiency: 0.8,
  source:
    'H100/H800/H200 SXM: large bf16 GEMMs reach ~700-800 of 989 TFLOPS (power-limited clock); measured for this planner on an H200 (torch 2.11, CUDA 13, bench/plan/data/h200-gemm.json): 680-796 TFLOPS on 4k-16k shapes, 702 sustained on 16k cubed; 132 SMs',
};

const facts: Readonly<Record<string, KernelFacts>> = {
  'a100-40g': nvidiaAmpere,
  'a100-80g': nvidiaAmpere,
  'h100-sxm': nvidiaHopper,
  h800: nvidiaHopper,
  h200: nvidiaHopper,
  b200: {
    gemmCeiling: 0.75,
    computeUnits: 148,
    memoryEfficiency: 0.8,
    source: 'estimated: B200 assumed to keep Hopper’s achievable fraction; 148 SMs',
  },
  mi300x: {
    gemmCeiling: 0.55,
    computeUnits: 304,
    memoryEfficiency: 0.7,
    source:
      'MI300X: AMD reports max-achievable bf16 GEMM well below the 1,307 TFLOPS peak (~50-60%); 304 CUs',
  },
  mi250x: {
    gemmCeiling: 0.6,
    computeUnits: 220,
    memoryEfficiency: 0.7,
    source: 'estimated: MI250X (two GCDs) reaches ~60% of its matrix peak in rocBLAS; 220 CUs',
  },
};

const fallback: KernelFacts = {
  gemmCeiling: 0.7,
  computeUnits: 128,
  memoryEfficiency: 0.75,
  source: 'estimated: no public GEMM measurements; a typical 70% of peak and 128 compute units',
};

/** Kernel facts of an accelerator (an estimate, said so, when nothing is published). */
export function kernelFacts(accelerator: Accelerator): KernelFacts {
  return facts[accelerator.id] ?? fallback;
}

/** Idle time between two dependent kernels (launch and tail), seconds; CUDA graphs would cut it. */
export const kernelGapSeconds = 2e-6;

/** Tile edge of the GEMM kernels the shape factor assumes. */
const tile = 128;

/** The compute speed one device gives the step: peaks in FLOP/s and bytes/s, and its facts. */
export interface DeviceSpeed {
  readonly accelerator: Accelerator;
  /** Peak FLOP/s of the matrix products in the chosen precision. */
  readonly matmulFlops: number;
  /** Dense bf16 peak FLOP/s (what MFU is measured against). */
  readonly bf16Flops: number;
  /** Achievable HBM bytes/s. */
  readonly memoryBytesPerS: number;
  /** Bytes per element of the matrix operands. */
  readonly operandBytes: number;
  readonly facts: KernelFacts;
}

/** The speed of an accelerator for a precision; null when it has no such path. */
export function deviceSpeed(accelerator: Accelerator, precision: Precision): DeviceSpeed | null {
  const bf16 = accelerator.peakTflops.bf16 ?? accelerator.peakTflops.fp16;
  const peak = precision === 'fp8' ? accelerator.peakTflops.fp8 : bf16;
  if (peak === null || bf16 === null) return null;
  const f = kernelFacts(accelerator);
  return {
    accelerator,
    matmulFlops: peak * 1e12,
    bf16Flops: bf16 * 1e12,
    memoryBytesPerS: accelerator.memoryBandwidthGBs * 1e9 * f.memoryEfficiency,
    operandBytes: precision === 'fp8' ? 1 : 2,
    facts: f,
  };
}

/** Padding loss of one dimension: useful work over the work of the padded tiles. */
function padding(dim: number, edge: number): number {
  return dim / (Math.ceil(dim / edge) * edge);
}

/**
 * Seconds of `count` identical GEMMs of shape (m x k) . (k x n): the slower of compute (peak x
 * ceiling x tile padding x wave quantization) and operand traffic, plus the launch gap. Batched GEMMs
 * (`count` > 1) fill the chip together.
 */
export function gemmSeconds(
  speed: DeviceSpeed,
  m: number,
  n: number,
  k: number,
  count = 1,
): number {
  if (m <= 0 || n <= 0 || k <= 0 || count <= 0) return 0;
  const flops = 2 * m * n * k * count;
  // Output tiles run in waves of one tile per compute unit; the last wave is partly idle
  // (and a GEMM with fewer tiles than units leaves units idle).
  const tiles = Math.ceil(m / tile) * Math.ceil(n / tile) * count;
  const units = speed.facts.computeUnits;
  const waves = tiles / (Math.ceil(tiles / units) * units);
  const shape = padding(m, tile) * padding(n, tile) * padding(k, 64) * waves;
  const compute = flops / (speed.matmulFlops * speed.facts.gemmCeiling * shape);
  // Operands in the GEMM's precision, output in bf16.
  const bytes = count * (speed.operandBytes * (m * k + k * n) + 2 * m * n);
  const memory = bytes / speed.memoryBytesPerS;
  return Math.max(compute, memory) + kernelGapSeconds;
}

/** Seconds to stream `bytes` through HBM in `kernels` element-wise kernels. */
export function memoryBoundSeconds(speed: DeviceSpeed, bytes: number, kernels: number): number {
  return bytes / speed.memoryBytesPerS + kernels * kernelGapSeconds;
}

/**
 * Fraction of the GEMM ceiling that fused (flash) attention reaches: FlashAttention-2 runs its
 * forward at ~70% of an A100's peak against ~86% for a plain GEMM, its backward lower.
 */
export const flashAttentionFraction = { forward: 0.8, backward: 0.65 } as const;

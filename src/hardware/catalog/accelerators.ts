import type { Accelerator } from '../accelerator.ts';
import { estimated, published } from '../provenance.ts';
import {
  a100Datasheet,
  ampereWhitepaper,
  ascend910HotChips,
  birenBrief,
  birenHotChips34,
  birenLaunch,
  blackwellDatasheet,
  blackwellTechBrief,
  cannPlatformConfig,
  chipsAndCheeseB200,
  deepseekV3Insights,
  dgxB200Datasheet,
  dgxB200Guide,
  epycGenoaSpecs,
  frontierGuide,
  giteeAscendDoc,
  h100Datasheet,
  h200Datasheet,
  h800Datasheet,
  hopperWhitepaper,
  mi250xDatasheet,
  mi250xHotChips,
  mi300xDatasheet,
  ncclTuning,
  pcie4Spec,
  pcie5Spec,
  rocmMi250Arch,
  rocmMi300Arch,
} from './sources.ts';

/*
 * Conventions every entry follows:
 * - peakTflops are dense (no 2:4 sparsity). Where a vendor quotes only the sparse figure the
 *   entry halves it and says so in the source.
 * - `fp32` is full-precision FP32 (IEEE inputs, no reduced mantissa) on the fastest unit that
 *   computes it: CUDA cores on NVIDIA (there is no FP32 tensor path), matrix cores on CDNA.
 *   `tf32` is the reduced-mantissa FP32 tensor path (NVIDIA TF32, Biren TF32+, Ascend HF32).
 * - int8 is TOPS. A null format means the chip has no such path; nulls carry no provenance.
 * - Link latencies are one-hop small-message latencies including the software launch cost,
 *   which is what a collective cost model needs.
 */

/** H100 SXM5 80 GB: the template every entry follows (a provenance entry for every number). */
const h100Sxm: Accelerator = {
  id: 'h100-sxm',
  vendor: 'nvidia',
  name: 'NVIDIA H100 SXM5 80GB',
  memoryGiB: 80,
  memoryType: 'HBM3',
  memoryBandwidthGBs: 3352,
  onChipSramMiB: 50,
  peakTflops: {
    fp32: 66.9,
    tf32: 494.7,
    bf16: 989.4,
    fp16: 989.4,
    fp8: 1978.9,
    int8: 1978.9,
    fp4: null,
  },
  tdpWatts: 700,
  links: { kind: 'nvlink4', gbsPerDirectionPerLink: 25, count: 18, latencyUs: 1.5 },
  hostInterface: { pcieGen: 5, pcieLanes: 16, gbsPerDirection: 64, cxl: false },
  dies: 1,
  dieToDieGBs: null,
  formFactor: 'sxm',
  standardServer: 'hgx-h100',
  provenance: {
    memoryGiB: published(h100Datasheet),
    memoryBandwidthGBs: published(h100Datasheet, '3.35 TB/s'),
    onChipSramMiB: published(hopperWhitepaper, '50 MB L2 cache'),
    'peakTflops.fp32': published(h100Datasheet),
    'peakTflops.tf32': published(h100Datasheet),
    'peakTflops.bf16': published(h100Datasheet),
    'peakTflops.fp16': published(h100Datasheet),
    'peakTflops.fp8': published(h100Datasheet),
    'peakTflops.int8': published(h100Datasheet),
    tdpWatts: published(h100Datasheet, 'up to 700 W'),
    'links.gbsPerDirectionPerLink': published(
      hopperWhitepaper,
      '18 NVLink 4 links, 900 GB/s total bidirectional',
    ),
    'links.count': published(hopperWhitepaper),
    'links.latencyUs': published(ncclTuning, 'rounded'),
    'hostInterface.pcieGen': published(h100Datasheet),
    'hostInterface.pcieLanes': published(h100Datasheet),
    'hostInterface.gbsPerDirection': published(h100Datasheet, 'PCIe Gen5 128 GB/s bidirectional'),
    dies: published(hopperWhitepaper),
  },
};

/** A100 SXM4 40 GB (HBM2): the launch part of DGX A100 320GB. */
const a100_40g: Accelerator = {
  id: 'a100-40g',
  vendor: 'nvidia',
  name: 'NVIDIA A100 SXM4 40GB',
  memoryGiB: 40,
  memoryType: 'HBM2',
  memoryBandwidthGBs: 1555,
  onChipSramMiB: 40,
  peakTflops: { fp32: 19.5, tf32: 156, bf16: 312, fp16: 312, fp8: null, int8: 624, fp4: null },
  tdpWatts: 400,
  links: { kind: 'nvlink3', gbsPerDirectionPerLink: 25, count: 12, latencyUs: 1.5 },
  hostInterface: { pcieGen: 4, pcieLanes: 16, gbsPerDirection: 32, cxl: false },
  dies: 1,
  dieToDieGBs: null,
  formFactor: 'sxm',
  standardServer: 'hgx-a100-40g',
  provenance: {
    memoryGiB: published(a100Datasheet),
    memoryBandwidthGBs: published(a100Datasheet, '1,555 GB/s'),
    onChipSramMiB: published(ampereWhitepaper, '40 MB L2 cache'),
    'peakTflops.fp32': published(a100Datasheet),
    'peakTflops.tf32': published(a100Datasheet, '156 dense, 312 with sparsity'),
    'peakTflops.bf16': published(a100Datasheet, '312 dense, 624 with sparsity'),
    'peakTflops.fp16': published(a100Datasheet, '312 dense, 624 with sparsity'),
    'peakTflops.int8': published(a100Datasheet, '624 dense, 1248 with sparsity'),
    tdpWatts: published(a100Datasheet, 'SXM max TDP 400 W'),
    'links.gbsPerDirectionPerLink': published(
      ampereWhitepaper,
      '12 links, 600 GB/s total bidirectional = 25 GB/s per link per direction',
    ),
    'links.count': published(ampereWhitepaper),
    'links.latencyUs': published(ncclTuning, 'rounded; same NVLink hop model as Hopper'),
    'hostInterface.pcieGen': published(a100Datasheet),
    'hostInterface.pcieLanes': published(a100Datasheet),
    'hostInterface.gbsPerDirection': published(pcie4Spec, 'datasheet: PCIe Gen4 64 GB/s'),
    dies: published(ampereWhitepaper),
  },
};

/** A100 SXM4 80 GB (HBM2e): same compute as the 40 GB part, faster and larger memory. */
const a100_80g: Accelerator = {
  ...a100_40g,
  id: 'a100-80g',
  name: 'NVIDIA A100 SXM4 80GB',
  memoryGiB: 80,
  memoryType: 'HBM2e',
  memoryBandwidthGBs: 2039,
  standardServer: 'hgx-a100-80g',
  provenance: {
    ...a100_40g.provenance,
    memoryGiB: published(a100Datasheet),
    memoryBandwidthGBs: published(a100Datasheet, '2,039 GB/s (SXM 80GB)'),
  },
};

/** H800 SXM5: the H100 for the Chinese market; same compute, NVLink cut to 400 GB/s. */
const h800: Accelerator = {
  id: 'h800',
  vendor: 'nvidia',
  name: 'NVIDIA H800 SXM5 80GB',
  memoryGiB: 80,
  memoryType: 'HBM3',
  memoryBandwidthGBs: 3352,
  onChipSramMiB: 50,
  peakTflops: {
    fp32: 66.9,
    tf32: 494.7,
    bf16: 989.4,
    fp16: 989.4,
    fp8: 1978.9,
    int8: 1978.9,
    fp4: null,
  },
  tdpWatts: 700,
  links: { kind: 'nvlink4', gbsPerDirectionPerLink: 25, count: 8, latencyUs: 1.5 },
  hostInterface: { pcieGen: 5, pcieLanes: 16, gbsPerDirection: 64, cxl: false },
  dies: 1,
  dieToDieGBs: null,
  formFactor: 'sxm',
  standardServer: 'hgx-h800',
  provenance: {
    memoryGiB: published(h800Datasheet),
    memoryBandwidthGBs: published(h800Datasheet, '3.35 TB/s, as H100 SXM5'),
    onChipSramMiB: published(hopperWhitepaper, 'same GH100 die: 50 MB L2'),
    'peakTflops.fp32': published(h800Datasheet),
    'peakTflops.tf32': published(h800Datasheet),
    'peakTflops.bf16': published(h800Datasheet),
    'peakTflops.fp16': published(h800Datasheet),
    'peakTflops.fp8': published(h800Datasheet),
    'peakTflops.int8': published(h800Datasheet),
    tdpWatts: published(h800Datasheet, 'up to 700 W'),
    'links.gbsPerDirectionPerLink': published(
      hopperWhitepaper,
      'NVLink 4 runs 25 GB/s per link per direction',
    ),
    'links.count': estimated(
      'NVIDIA publishes the H800 NVLink total (400 GB/s bidirectional, also stated by DeepSeek) but not the link count; 400 GB/s / 50 GB/s per bidirectional NVLink 4 link = 8 links',
      `${h800Datasheet}; ${deepseekV3Insights}`,
    ),
    'links.latencyUs': published(ncclTuning, 'rounded'),
    'hostInterface.pcieGen': published(h800Datasheet),
    'hostInterface.pcieLanes': published(h800Datasheet),
    'hostInterface.gbsPerDirection': published(pcie5Spec),
    dies: published(hopperWhitepaper),
  },
};

/** H200 SXM: GH100 with 141 GB HBM3e at 4.8 TB/s; compute as H100 SXM5. */
const h200: Accelerator = {
  id: 'h200',
  vendor: 'nvidia',
  name: 'NVIDIA H200 SXM 141GB',
  memoryGiB: 141,
  memoryType: 'HBM3e',
  memoryBandwidthGBs: 4800,
  onChipSramMiB: 50,
  peakTflops: {
    fp32: 66.9,
    tf32: 494.7,
    bf16: 989.4,
    fp16: 989.4,
    fp8: 1978.9,
    int8: 1978.9,
    fp4: null,
  },
  tdpWatts: 700,
  links: { kind: 'nvlink4', gbsPerDirectionPerLink: 25, count: 18, latencyUs: 1.5 },
  hostInterface: { pcieGen: 5, pcieLanes: 16, gbsPerDirection: 64, cxl: false },
  dies: 1,
  dieToDieGBs: null,
  formFactor: 'sxm',
  standardServer: 'hgx-h200',
  provenance: {
    memoryGiB: published(h200Datasheet, '141 GB HBM3e'),
    memoryBandwidthGBs: published(h200Datasheet, '4.8 TB/s'),
    onChipSramMiB: published(hopperWhitepaper, 'same GH100 die: 50 MB L2'),
    'peakTflops.fp32': published(h200Datasheet, '67 TFLOPS; 66.9 at the H100 whitepaper clocks'),
    'peakTflops.tf32': published(h200Datasheet, '989 sparse, halved; identical to H100 SXM5'),
    'peakTflops.bf16': published(h200Datasheet, '1,979 sparse, halved'),
    'peakTflops.fp16': published(h200Datasheet, '1,979 sparse, halved'),
    'peakTflops.fp8': published(h200Datasheet, '3,958 sparse, halved'),
    'peakTflops.int8': published(h200Datasheet, '3,958 TOPS sparse, halved'),
    tdpWatts: published(h200Datasheet, 'up to 700 W (SXM)'),
    'links.gbsPerDirectionPerLink': published(h200Datasheet, 'NVLink 900 GB/s bidirectional'),
    'links.count': published(hopperWhitepaper, '18 NVLink 4 links per GH100'),
    'links.latencyUs': published(ncclTuning, 'rounded'),
    'hostInterface.pcieGen': published(h200Datasheet),
    'hostInterface.pcieLanes': published(h200Datasheet),
    'hostInterface.gbsPerDirection': published(h200Datasheet, 'PCIe Gen5 128 GB/s bidirectional'),
    dies: published(hopperWhitepaper),
  },
};

/** B200 (HGX, 1,000 W): two dies as one GPU, NVLink 5, FP4. */
const b200: Accelerator = {
  id: 'b200',
  vendor: 'nvidia',
  name: 'NVIDIA B200 SXM 180GB (HGX B200)',
  memoryGiB: 180,
  memoryType: 'HBM3e',
  memoryBandwidthGBs: 8000,
  onChipSramMiB: 126,
  peakTflops: {
    fp32: 80,
    tf32: 1100,
    bf16: 2250,
    fp16: 2250,
    fp8: 4500,
    int8: 4500,
    fp4: 9000,
  },
  tdpWatts: 1000,
  links: { kind: 'nvlink5', gbsPerDirectionPerLink: 50, count: 18, latencyUs: 1.5 },
  hostInterface: { pcieGen: 5, pcieLanes: 16, gbsPerDirection: 64, cxl: false },
  dies: 2,
  dieToDieGBs: 10000,
  formFactor: 'sxm',
  standardServer: 'hgx-b200',
  provenance: {
    memoryGiB: published(
      dgxB200Guide,
      '1,440 GB total / 8 = 180 GB usable per GPU (192 GB of HBM3e physically)',
    ),
    memoryBandwidthGBs: published(dgxB200Datasheet, '64 TB/s / 8 = 8 TB/s per GPU'),
    onChipSramMiB: published(chipsAndCheeseB200, 'measured; NVIDIA does not list the L2 size'),
    'peakTflops.fp32': published(blackwellDatasheet),
    'peakTflops.tf32': published(blackwellDatasheet, '2.2 PFLOPS sparse, halved'),
    'peakTflops.bf16': published(blackwellDatasheet, '4.5 PFLOPS sparse, halved'),
    'peakTflops.fp16': published(blackwellDatasheet, '4.5 PFLOPS sparse, halved'),
    'peakTflops.fp8': published(
      blackwellDatasheet,
      '9 PFLOPS sparse, halved; DGX B200 72 PFLOPS sparse / 8 agrees',
    ),
    'peakTflops.int8': published(blackwellDatasheet, '9 POPS sparse, halved'),
    'peakTflops.fp4': published(
      blackwellDatasheet,
      '18 PFLOPS sparse, halved; DGX B200 72 PFLOPS dense / 8 agrees',
    ),
    tdpWatts: published(blackwellDatasheet, 'HGX B200 configured at 1,000 W'),
    'links.gbsPerDirectionPerLink': published(
      blackwellTechBrief,
      '1.8 TB/s bidirectional over 18 links',
    ),
    'links.count': published(blackwellTechBrief, '18 NVLink 5 links per GPU'),
    'links.latencyUs': published(ncclTuning, 'rounded; same NVLink hop model as Hopper'),
    'hostInterface.pcieGen': published(
      dgxB200Guide,
      'B200 has a PCIe Gen6 x16 interface, but HGX/DGX B200 hosts (Xeon 8570) are PCIe Gen5, so host copies run at Gen5',
    ),
    'hostInterface.pcieLanes': published(dgxB200Guide),
    'hostInterface.gbsPerDirection': published(pcie5Spec, 'Gen5 x16 as deployed in HGX B200'),
    dies: published(blackwellTechBrief, 'two reticle-limited dies, one CUDA device'),
    dieToDieGBs: published(blackwellTechBrief, 'NV-HBI 10 TB/s'),
  },
};

/**
 * MI250X, modeled as ONE GCD per device. The OAM package holds two GCDs that ROCm exposes as
 * two separate GPUs with 64 GB each (one rank per GCD), so the catalog's device is the GCD and
 * every number is half the package figure. The standard server `mi250x-4oam` therefore holds
 * 8 devices (4 packages), as Frontier users count them.
 */
const mi250x: Accelerator = {
  id: 'mi250x',
  vendor: 'amd',
  name: 'AMD Instinct MI250X (one GCD; two per OAM package)',
  memoryGiB: 64,
  memoryType: 'HBM2e',
  memoryBandwidthGBs: 1638.4,
  onChipSramMiB: 8,
  peakTflops: {
    fp32: 47.85,
    tf32: null,
    bf16: 191.5,
    fp16: 191.5,
    fp8: null,
    int8: 191.5,
    fp4: null,
  },
  tdpWatts: 280,
  links: { kind: 'infinity-fabric-3', gbsPerDirectionPerLink: 50, count: 7, latencyUs: 2 },
  hostInterface: { pcieGen: 4, pcieLanes: 16, gbsPerDirection: 36, cxl: false },
  dies: 1,
  dieToDieGBs: null,
  formFactor: 'oam',
  standardServer: 'mi250x-4oam',
  provenance: {
    memoryGiB: published(frontierGuide, '8 GCDs per node, each with 64 GB HBM2e'),
    memoryBandwidthGBs: published(
      mi250xDatasheet,
      '3.2768 TB/s per package (1.6 GHz x 8192 bits), halved per GCD',
    ),
    onChipSramMiB: published(mi250xHotChips, '8 MB L2 per GCD'),
    'peakTflops.fp32': published(mi250xDatasheet, 'FP32 matrix 95.7 TF per package, halved'),
    'peakTflops.bf16': published(mi250xDatasheet, '383 TF per package, halved'),
    'peakTflops.fp16': published(mi250xDatasheet, '383 TF per package, halved'),
    'peakTflops.int8': published(mi250xDatasheet, '383 TOPS per package, halved'),
    tdpWatts: published(mi250xDatasheet, '560 W per package, halved per GCD'),
    'links.gbsPerDirectionPerLink': published(rocmMi250Arch, '25 GT/s x 16 bits = 50 GB/s'),
    'links.count': published(
      rocmMi250Arch,
      '8 links per GCD (two interfaces of four); on HPE Cray EX235a one goes to the CPU, leaving 7 GPU-facing: 4 to the sibling GCD, 3 to GCDs on other packages (Frontier node diagram)',
    ),
    'links.latencyUs': estimated(
      'RCCL over xGMI: ~1 us kernel launch plus sub-microsecond link hop, rounded up to 2 us because AMD publishes no hop latency',
      'by analogy with the NCCL NVLink constants',
    ),
    'hostInterface.pcieGen': published(mi250xDatasheet, 'PCIe Gen4 x16 on PCIe hosts'),
    'hostInterface.pcieLanes': published(mi250xDatasheet),
    'hostInterface.gbsPerDirection': published(
      frontierGuide,
      'CPU-GCD Infinity Fabric 36+36 GB/s on EX235a (PCIe Gen4 x16 hosts get 32)',
    ),
    dies: published(frontierGuide, 'one GCD per device'),
  },
};

/** MI300X: 8 XCDs on 4 IODs, 192 GB HBM3, one device in SPX mode. */
const mi300x: Accelerator = {
  id: 'mi300x',
  vendor: 'amd',
  name: 'AMD Instinct MI300X 192GB (OAM)',
  memoryGiB: 192,
  memoryType: 'HBM3',
  memoryBandwidthGBs: 5300,
  onChipSramMiB: 256,
  peakTflops: {
    fp32: 163.4,
    tf32: 653.7,
    bf16: 1307.4,
    fp16: 1307.4,
    fp8: 2614.9,
    int8: 2614.9,
    fp4: null,
  },
  tdpWatts: 750,
  links: { kind: 'infinity-fabric-4', gbsPerDirectionPerLink: 64, count: 7, latencyUs: 2 },
  hostInterface: { pcieGen: 5, pcieLanes: 16, gbsPerDirection: 64, cxl: false },
  dies: 8,
  dieToDieGBs: 17000,
  formFactor: 'oam',
  standardServer: 'mi300x-8oam',
  provenance: {
    memoryGiB: published(mi300xDatasheet),
    memoryBandwidthGBs: published(mi300xDatasheet, '5.3 TB/s'),
    onChipSramMiB: published(
      mi300xDatasheet,
      '256 MB Infinity Cache (last level; the 8 x 4 MB XCD L2s are not added)',
    ),
    'peakTflops.fp32': published(mi300xDatasheet, 'FP32 vector and matrix both 163.4'),
    'peakTflops.tf32': published(mi300xDatasheet, '653.7 dense, 1307.4 with sparsity'),
    'peakTflops.bf16': published(mi300xDatasheet, '1307.4 dense, 2614.9 with sparsity'),
    'peakTflops.fp16': published(mi300xDatasheet, '1307.4 dense'),
    'peakTflops.fp8': published(mi300xDatasheet, '2614.9 dense, 5229.8 with sparsity'),
    'peakTflops.int8': published(mi300xDatasheet, '2614.9 TOPS dense'),
    tdpWatts: published(mi300xDatasheet, '750 W peak board power'),
    'links.gbsPerDirectionPerLink': published(mi300xDatasheet, '128 GB/s bidirectional per link'),
    'links.count': published(mi300xDatasheet, '7 links, 896 GB/s aggregate bidirectional'),
    'links.latencyUs': estimated(
      'RCCL over xGMI: ~1 us kernel launch plus sub-microsecond link hop, rounded up to 2 us because AMD publishes no hop latency',
      'by analogy with the NCCL NVLink constants',
    ),
    'hostInterface.pcieGen': published(mi300xDatasheet, 'PCIe Gen5 x16'),
    'hostInterface.pcieLanes': published(mi300xDatasheet),
    'hostInterface.gbsPerDirection': published(pcie5Spec),
    dies: published(rocmMi300Arch, '8 XCDs; the package appears as one device in SPX mode'),
    dieToDieGBs: estimated(
      'AMD publishes no IOD-to-IOD figure for Infinity Fabric AP; XCD traffic to memory crosses the IODs at up to the 17 TB/s peak Infinity Cache bandwidth AMD does publish, so that is used as the upper bound. Collectives never route over it because the package is one device',
      `${rocmMi300Arch}; AMD MI300X launch (Dec 2023): Infinity Cache 17 TB/s peak`,
    ),
  },
};

/**
 * Ascend 910B, as the 910B2 bin (24 AI cores, 64 GB) shipped in the Atlas 800T A2. Huawei's
 * public figures are patchy and disagree between SKUs (910B1..B4) and reports, so compute is
 * derived from the CANN platform configuration and marked estimated.
 */
const ascend910b: Accelerator = {
  id: 'ascend-910b',
  vendor: 'huawei',
  name: 'Huawei Ascend 910B (910B2, as in Atlas 800T A2)',
  memoryGiB: 64,
  memoryType: 'HBM2e',
  memoryBandwidthGBs: 1600,
  onChipSramMiB: 192,
  peakTflops: {
    fp32: 88.5,
    tf32: 176.9,
    bf16: 353.9,
    fp16: 353.9,
    fp8: null,
    int8: 707.8,
    fp4: null,
  },
  tdpWatts: 400,
  links: { kind: 'hccs', gbsPerDirectionPerLink: 28, count: 7, latencyUs: 2 },
  hostInterface: { pcieGen: 4, pcieLanes: 16, gbsPerDirection: 32, cxl: false },
  dies: 1,
  dieToDieGBs: null,
  formFactor: 'oam',
  standardServer: 'atlas-800t-a2',
  provenance: {
    memoryGiB: published(cannPlatformConfig, `memory_size = 64 GiB; also ${giteeAscendDoc}`),
    memoryBandwidthGBs: estimated(
      'Huawei does not publish it; third-party reports range 1.5-1.8 TB/s; four HBM2e stacks at ~400 GB/s each give 1.6 TB/s, and the CANN config (ddr_rate 32 B/cycle/core x 24 cores x 1.85 GHz = 1.42 TB/s) is of the same order',
      cannPlatformConfig,
    ),
    onChipSramMiB: published(cannPlatformConfig, 'l2_size = 201326592 bytes = 192 MiB'),
    'peakTflops.fp32': estimated(
      'the 910B Cube unit accepts FP32 but its rate is not public; assumed 1/4 of the 16-bit rate (353.9 / 4), as on Biren and CDNA-class matrix units. Vector-only FP32 would be far lower (~11 TFLOPS: 48 vector cores x 64 lanes x 2 x 1.8 GHz)',
      cannPlatformConfig,
    ),
    'peakTflops.tf32': estimated(
      "HF32 (Ascend's TF32-like mode) rate not public; assumed half the 16-bit rate, as NVIDIA TF32 is half of FP16",
    ),
    'peakTflops.bf16': estimated(
      '24 AI cores x (16 x 16 x 16 Cube MACs) x 2 FLOP x 1.8 GHz = 353.9 TFLOPS from the CANN platform config; public reports for 910B SKUs range from 280 (910B4) to ~376 TFLOPS, so treat as +-15%',
      cannPlatformConfig,
    ),
    'peakTflops.fp16': estimated('same Cube rate as bf16 (353.9 TFLOPS)', cannPlatformConfig),
    'peakTflops.int8': estimated(
      'CANN DtypeMKN for INT8 is 16 x 32 x 16 (K doubled), so 2 x the FP16 rate = 707.8 TOPS; Ascend 910 had the same 2:1 ratio (512 TOPS / 256 TFLOPS)',
      `${cannPlatformConfig}; ${ascend910HotChips}`,
    ),
    tdpWatts: estimated(
      'not published per module; reports for the 910B range 310-400 W (the original 910 was specified at 350 W); the upper value is used for power planning',
      ascend910HotChips,
    ),
    'links.gbsPerDirectionPerLink': estimated(
      'Atlas 800T A2 material quotes 392 GB/s HCCS per NPU over a full mesh of 7 peers: 392 / 7 = 56 GB/s bidirectional = 28 GB/s per direction per link; not confirmed by a Huawei datasheet',
      giteeAscendDoc,
    ),
    'links.count': estimated(
      '8 NPUs fully interconnected by HCCS in one server means one direct link to each of 7 peers',
      giteeAscendDoc,
    ),
    'links.latencyUs': estimated(
      'HCCL small-message latency is not published; assumed like NVLink/xGMI (~1 us launch plus the hop), rounded to 2 us',
    ),
    'hostInterface.pcieGen': estimated(
      'Atlas 800T A2 hosts are Kunpeng 920 CPUs with PCIe 4.0, so host copies run at Gen4 even if the NPU supports more',
    ),
    'hostInterface.pcieLanes': estimated('x16 per NPU, as on the Atlas 300T card and Ascend 910'),
    'hostInterface.gbsPerDirection': estimated('PCIe 4.0 x16 theoretical', pcie4Spec),
    dies: estimated(
      'one compute die per 910B package; the dual-die part is the later 910C (two 910B-class dies)',
    ),
  },
};

/** Biren BR104: the single-die PCIe card of the BR100 generation (Hot Chips 34). */
const br104: Accelerator = {
  id: 'br104',
  vendor: 'biren',
  name: 'Biren BR104 (PCIe card, one BR100-generation die)',
  memoryGiB: 32,
  memoryType: 'HBM2e',
  memoryBandwidthGBs: 819,
  onChipSramMiB: 150,
  peakTflops: { fp32: 128, tf32: 256, bf16: 512, fp16: 512, fp8: null, int8: 1024, fp4: null },
  tdpWatts: 300,
  links: { kind: 'none', gbsPerDirectionPerLink: 0, count: 0, latencyUs: 0 },
  hostInterface: { pcieGen: 5, pcieLanes: 16, gbsPerDirection: 64, cxl: true },
  dies: 1,
  dieToDieGBs: null,
  formFactor: 'pcie',
  standardServer: 'br104-pcie-8',
  provenance: {
    memoryGiB: published(birenLaunch),
    memoryBandwidthGBs: published(birenLaunch, '2048-bit HBM2e, 819 GB/s'),
    onChipSramMiB: estimated(
      "half of BR100's 300 MB on-chip SRAM: BR104 is one of BR100's two tiles",
      birenHotChips34,
    ),
    'peakTflops.fp32': published(birenLaunch),
    'peakTflops.tf32': published(birenLaunch, "Biren's TF32+ format"),
    'peakTflops.bf16': published(birenLaunch),
    'peakTflops.fp16': estimated(
      'Biren lists FP16 support but no FP16 rate; assumed equal to BF16 as on every other tensor unit in this catalog',
      birenLaunch,
    ),
    'peakTflops.int8': published(birenLaunch),
    tdpWatts: published(birenLaunch, '300 W FHFL card'),
    'links.gbsPerDirectionPerLink': estimated(
      'modeled without GPU-to-GPU links: the BR104 card is used here with PCIe-only peer traffic (server br104-pcie-8); Biren published no card bridge figures in the Hot Chips 34 material',
    ),
    'links.count': estimated('no BLink modeled on the PCIe card (see gbsPerDirectionPerLink)'),
    'links.latencyUs': estimated('no links modeled, so no link latency'),
    'hostInterface.pcieGen': published(birenHotChips34, 'PCIe 5.0 x16 with CXL'),
    'hostInterface.pcieLanes': published(birenHotChips34),
    'hostInterface.gbsPerDirection': published(pcie5Spec),
    dies: published(birenLaunch, 'single-chiplet version of BR100'),
  },
};

/** Biren BR100: two BR104-class tiles in one OAM package (Hot Chips 34). */
const br100: Accelerator = {
  id: 'br100',
  vendor: 'biren',
  name: 'Biren BR100 (OAM, two tiles)',
  memoryGiB: 64,
  memoryType: 'HBM2e',
  memoryBandwidthGBs: 1640,
  onChipSramMiB: 300,
  peakTflops: {
    fp32: 256,
    tf32: 512,
    bf16: 1024,
    fp16: 1024,
    fp8: null,
    int8: 2048,
    fp4: null,
  },
  tdpWatts: 550,
  links: { kind: 'blink', gbsPerDirectionPerLink: 32, count: 8, latencyUs: 2 },
  hostInterface: { pcieGen: 5, pcieLanes: 16, gbsPerDirection: 64, cxl: true },
  dies: 2,
  dieToDieGBs: 896,
  formFactor: 'oam',
  standardServer: 'br100-oam-8',
  provenance: {
    memoryGiB: published(birenHotChips34, '64 GB HBM2e, four stacks'),
    memoryBandwidthGBs: published(
      birenLaunch,
      '4096-bit HBM2e, 1.64 TB/s; some reports quote 2.3 TB/s, which is the BLink total I/O',
    ),
    onChipSramMiB: published(birenHotChips34, '300 MB on-chip SRAM'),
    'peakTflops.fp32': published(birenLaunch),
    'peakTflops.tf32': published(birenLaunch, "Biren's TF32+ format"),
    'peakTflops.bf16': published(birenLaunch),
    'peakTflops.fp16': estimated(
      'Biren lists FP16 support but no FP16 rate; assumed equal to BF16 as on every other tensor unit in this catalog',
      birenLaunch,
    ),
    'peakTflops.int8': published(birenLaunch),
    tdpWatts: published(birenHotChips34, '550 W OAM'),
    'links.gbsPerDirectionPerLink': published(
      birenHotChips34,
      '64 GB/s bidirectional per BLink port = 32 GB/s per direction',
    ),
    'links.count': published(birenHotChips34, '8 BLink ports'),
    'links.latencyUs': estimated(
      'no published BLink latency; assumed like NVLink/xGMI (~1 us launch plus the hop), rounded to 2 us',
    ),
    'hostInterface.pcieGen': published(birenHotChips34),
    'hostInterface.pcieLanes': published(birenHotChips34),
    'hostInterface.gbsPerDirection': published(pcie5Spec),
    dies: published(birenHotChips34),
    dieToDieGBs: published(birenHotChips34, '896 GB/s die-to-die'),
  },
};

const br106Compute =
  "BR106 compute is not public; estimated equal to BR104, the published single die of the previous generation, because the vendor states the dual-die BR166 has twice the single die's performance and BR100 = 2 x BR104 had the same structure (two dies, four DRAM stacks, 896 GB/s die-to-die). Treat as +-50%";

/** Biren BR106: single compute die on an OAM module; largely not public. */
const br106: Accelerator = {
  id: 'br106',
  vendor: 'biren',
  name: 'Biren BR106 (OAM, single die)',
  memoryGiB: 32,
  memoryType: 'HBM2e',
  memoryBandwidthGBs: 819,
  onChipSramMiB: 150,
  peakTflops: { fp32: 128, tf32: 256, bf16: 512, fp16: 512, fp8: null, int8: 1024, fp4: null },
  tdpWatts: 300,
  links: { kind: 'blink', gbsPerDirectionPerLink: 32, count: 8, latencyUs: 2 },
  hostInterface: { pcieGen: 5, pcieLanes: 16, gbsPerDirection: 64, cxl: true },
  dies: 1,
  dieToDieGBs: null,
  formFactor: 'oam',
  standardServer: 'br106-oam-8',
  provenance: {
    memoryGiB: estimated(
      "the vendor's dual-die package has four DRAM stacks, so two per die; at BR100's 16 GB per HBM2e stack that is 32 GB",
      `${birenBrief}; ${birenHotChips34}`,
    ),
    memoryBandwidthGBs: estimated(
      "two stacks at BR100's per-stack rate (1.64 TB/s / 4 = 410 GB/s) = 819 GB/s, as BR104",
      birenLaunch,
    ),
    onChipSramMiB: estimated("half of BR100's 300 MB per die, as BR104", birenHotChips34),
    'peakTflops.fp32': estimated(br106Compute, birenLaunch),
    'peakTflops.tf32': estimated(`${br106Compute} (TF32+)`, birenLaunch),
    'peakTflops.bf16': estimated(br106Compute, birenLaunch),
    'peakTflops.fp16': estimated(`${br106Compute}; FP16 assumed equal to BF16`, birenLaunch),
    'peakTflops.int8': estimated(br106Compute, birenLaunch),
    tdpWatts: estimated(
      "not public; a single die is taken at BR104's 300 W, below BR100's 550 W for two dies (the next generation is quoted at 700 W air-cooled, so the current one sits below that)",
      `${birenLaunch}; ${birenBrief}`,
    ),
    'links.gbsPerDirectionPerLink': published(
      birenBrief,
      '64 GB/s per lane bidirectional = 32 GB/s per direction',
    ),
    'links.count': estimated(
      'the vendor gives 4 to 8 lanes per GPU; 8 is taken because an 8-OAM point-to-point full mesh needs at least 7 (one per peer), and BR100 had 8 BLink ports',
      birenBrief,
    ),
    'links.latencyUs': estimated(
      'no published BLink latency; assumed like NVLink/xGMI (~1 us launch plus the hop), rounded to 2 us',
    ),
    'hostInterface.pcieGen': published(birenBrief, 'PCIe 5.0 and CXL'),
    'hostInterface.pcieLanes': estimated('x16, as on BR100', birenHotChips34),
    'hostInterface.gbsPerDirection': published(pcie5Spec),
    dies: published(birenBrief, 'BR106 is the single-die chip'),
  },
};

/** Biren BR166: two BR106 dies in one OAM package; twice BR106 per the vendor. */
const br166: Accelerator = {
  id: 'br166',
  vendor: 'biren',
  name: 'Biren BR166 (OAM, two BR106 dies)',
  memoryGiB: 64,
  memoryType: 'HBM2e',
  memoryBandwidthGBs: 1638,
  onChipSramMiB: 300,
  peakTflops: {
    fp32: 256,
    tf32: 512,
    bf16: 1024,
    fp16: 1024,
    fp8: null,
    int8: 2048,
    fp4: null,
  },
  tdpWatts: 550,
  links: { kind: 'blink', gbsPerDirectionPerLink: 32, count: 8, latencyUs: 2 },
  hostInterface: { pcieGen: 5, pcieLanes: 16, gbsPerDirection: 64, cxl: true },
  dies: 2,
  dieToDieGBs: 896,
  formFactor: 'oam',
  standardServer: 'br166-oam-8',
  provenance: {
    memoryGiB: estimated(
      "2 x BR106: the vendor's dual-die package has four DRAM stacks, two per die",
      birenBrief,
    ),
    memoryBandwidthGBs: estimated('2 x BR106 (819 GB/s from two stacks per die)', birenBrief),
    onChipSramMiB: estimated('2 x BR106 (150 MiB per die), as BR100 = 2 x BR104', birenBrief),
    'peakTflops.fp32': estimated(
      "2 x BR106, per the vendor's 'twice the single die' claim",
      birenBrief,
    ),
    'peakTflops.tf32': estimated(
      "2 x BR106, per the vendor's 'twice the single die' claim",
      birenBrief,
    ),
    'peakTflops.bf16': estimated(
      "2 x BR106, per the vendor's 'twice the single die' claim",
      birenBrief,
    ),
    'peakTflops.fp16': estimated(
      "2 x BR106, per the vendor's 'twice the single die' claim",
      birenBrief,
    ),
    'peakTflops.int8': estimated(
      "2 x BR106, per the vendor's 'twice the single die' claim",
      birenBrief,
    ),
    tdpWatts: estimated(
      "not public; taken at BR100's 550 W, the same two-die OAM structure, and below the 700 W quoted for the next generation",
      `${birenHotChips34}; ${birenBrief}`,
    ),
    'links.gbsPerDirectionPerLink': published(
      birenBrief,
      '64 GB/s per lane bidirectional = 32 GB/s per direction',
    ),
    'links.count': estimated(
      'the vendor gives 4 to 8 lanes per GPU; the package takes the upper bound, 8, enough for a 7-peer full mesh',
      birenBrief,
    ),
    'links.latencyUs': estimated(
      'no published BLink latency; assumed like NVLink/xGMI (~1 us launch plus the hop), rounded to 2 us',
    ),
    'hostInterface.pcieGen': published(birenBrief, 'PCIe 5.0 and CXL'),
    'hostInterface.pcieLanes': estimated('x16, as on BR100', birenHotChips34),
    'hostInterface.gbsPerDirection': published(pcie5Spec),
    dies: published(birenBrief, 'two BR106 dies'),
    dieToDieGBs: published(birenBrief, '896 GB/s die-to-die'),
  },
};

const br110Unknown =
  'BR110 has no public figures; until the vendor publishes them it is assumed to match BR106, the single-die part of the same product line (design brief chip list)';

/** Biren BR110: newer, not public; modeled as a single-die OAM part like BR106. */
const br110: Accelerator = {
  ...br106,
  id: 'br110',
  name: 'Biren BR110 (OAM; figures assumed equal to BR106)',
  standardServer: 'br110-oam-8',
  provenance: {
    memoryGiB: estimated(br110Unknown, birenBrief),
    memoryBandwidthGBs: estimated(br110Unknown, birenBrief),
    onChipSramMiB: estimated(br110Unknown, birenBrief),
    'peakTflops.fp32': estimated(br110Unknown, birenBrief),
    'peakTflops.tf32': estimated(br110Unknown, birenBrief),
    'peakTflops.bf16': estimated(br110Unknown, birenBrief),
    'peakTflops.fp16': estimated(br110Unknown, birenBrief),
    'peakTflops.int8': estimated(br110Unknown, birenBrief),
    tdpWatts: estimated(br110Unknown, birenBrief),
    'links.gbsPerDirectionPerLink': published(
      birenBrief,
      '64 GB/s per lane bidirectional = 32 GB/s per direction',
    ),
    'links.count': estimated(
      'the vendor gives 4 to 8 lanes per GPU; 8 taken so the 8-OAM full mesh has a lane per peer',
      birenBrief,
    ),
    'links.latencyUs': estimated(
      'no published BLink latency; assumed like NVLink/xGMI (~1 us launch plus the hop), rounded to 2 us',
    ),
    'hostInterface.pcieGen': published(birenBrief, 'PCIe 5.0 and CXL'),
    'hostInterface.pcieLanes': estimated('x16, as on BR100', birenHotChips34),
    'hostInterface.gbsPerDirection': published(pcie5Spec),
    dies: estimated(br110Unknown, birenBrief),
  },
};

/**
 * One server CPU socket as a device, so jobs can run on CPU-only machines. Modeled on the
 * AMD EPYC 9654 (Genoa, 96 Zen 4 cores), whose figures are public; FLOPS are arithmetic on
 * cores x clock x FLOP/cycle at the base clock (all-core AVX-512 runs near base).
 */
const cpu: Accelerator = {
  id: 'cpu',
  vendor: 'generic',
  name: 'Server CPU socket (modeled on AMD EPYC 9654, 96-core Zen 4)',
  memoryGiB: 384,
  memoryType: 'DDR5-4800',
  memoryBandwidthGBs: 460.8,
  onChipSramMiB: 384,
  peakTflops: {
    fp32: 7.37,
    tf32: null,
    bf16: 14.75,
    fp16: null,
    fp8: null,
    int8: 29.49,
    fp4: null,
  },
  tdpWatts: 360,
  links: { kind: 'xgmi', gbsPerDirectionPerLink: 64, count: 4, latencyUs: 0.5 },
  hostInterface: { pcieGen: 5, pcieLanes: 128, gbsPerDirection: 504, cxl: true },
  dies: 12,
  dieToDieGBs: 57.6,
  formFactor: 'socket',
  standardServer: 'cpu-host',
  provenance: {
    memoryGiB: estimated(
      'one DIMM per channel: 12 channels x 32 GB = 384 GB per socket, a common configuration (the socket supports up to 6 TB)',
      epycGenoaSpecs,
    ),
    memoryBandwidthGBs: published(epycGenoaSpecs, '12 channels x 4800 MT/s x 8 bytes = 460.8 GB/s'),
    onChipSramMiB: published(epycGenoaSpecs, '384 MB L3 (12 CCDs x 32 MB)'),
    'peakTflops.fp32': estimated(
      '96 cores x 2.4 GHz x 32 FP32 FLOP/cycle (two 256-bit FMA pipes x 8 lanes x 2) = 7.37 TFLOPS',
      epycGenoaSpecs,
    ),
    'peakTflops.bf16': estimated(
      'AVX-512 BF16 VDPBF16PS does 64 FLOP per 512-bit instruction at one per cycle on Zen 4: 96 x 2.4 GHz x 64 = 14.75 TFLOPS (2 x fp32)',
      epycGenoaSpecs,
    ),
    'peakTflops.int8': estimated(
      'AVX-512 VNNI VPDPBUSD does 64 multiply-adds (128 ops) per 512-bit instruction at one per cycle: 96 x 2.4 GHz x 128 = 29.49 TOPS (4 x fp32)',
      epycGenoaSpecs,
    ),
    tdpWatts: published(epycGenoaSpecs, '360 W default TDP'),
    'links.gbsPerDirectionPerLink': estimated(
      'socket-to-socket xGMI links are x16 at up to 32 Gb/s: 16 x 32 / 8 = 64 GB/s per direction',
      epycGenoaSpecs,
    ),
    'links.count': estimated(
      'two-socket Genoa boards use 3 or 4 xGMI links between sockets; 4 taken',
      epycGenoaSpecs,
    ),
    'links.latencyUs': estimated(
      'a small message between processes on different sockets through shared memory costs a few hundred ns of cross-socket cache traffic plus MPI/gloo overhead; 0.5 us',
    ),
    'hostInterface.pcieGen': published(epycGenoaSpecs, '128 PCIe 5.0 lanes, CXL 1.1+'),
    'hostInterface.pcieLanes': published(epycGenoaSpecs, '128 lanes in one-socket mode'),
    'hostInterface.gbsPerDirection': published(
      pcie5Spec,
      '128 lanes x 3.94 GB/s = 504 GB/s per direction',
    ),
    dies: published(epycGenoaSpecs, '12 CCDs'),
    dieToDieGBs: estimated(
      'per-CCD GMI3 link to the IO die reads 32 B per fabric clock at ~1.8 GHz = 57.6 GB/s',
      epycGenoaSpecs,
    ),
  },
};

/** The catalog, in the order `cube hardware` lists it. */
export const accelerators: readonly Accelerator[] = [
  a100_40g,
  a100_80g,
  h100Sxm,
  h800,
  h200,
  b200,
  mi250x,
  mi300x,
  ascend910b,
  br104,
  br106,
  br100,
  br166,
  br110,
  cpu,
];

import type { Accelerator } from '../accelerator.ts';
import { published } from '../provenance.ts';

const h100Datasheet =
  'NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h100), SXM5 column; dense = half the with-sparsity figure';
const hopperWhitepaper = 'NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022)';

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
    'links.latencyUs': published(
      'NCCL tuning constants (src/graph/tuning.cc): NVLink base latency ~0.6 us per hop plus ~1 us launch',
      'rounded',
    ),
    'hostInterface.pcieGen': published(h100Datasheet),
    'hostInterface.pcieLanes': published(h100Datasheet),
    'hostInterface.gbsPerDirection': published(h100Datasheet, 'PCIe Gen5 128 GB/s bidirectional'),
    dies: published(hopperWhitepaper),
  },
};

/** The catalog, in the order `cube hardware` lists it. */
export const accelerators: readonly Accelerator[] = [h100Sxm];

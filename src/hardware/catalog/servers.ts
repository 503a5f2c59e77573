import type { ServerSpec } from '../server.ts';
import { published } from '../provenance.ts';

const dgxH100Guide = 'NVIDIA DGX H100 User Guide, hardware overview';

/** HGX/DGX H100: 8 SXM5 GPUs on four NVSwitch chips, 8 x 400 Gb/s ConnectX-7, one per GPU. */
const hgxH100: ServerSpec = {
  id: 'hgx-h100',
  name: 'NVIDIA HGX H100 8-GPU (DGX H100)',
  accelerator: 'h100-sxm',
  acceleratorsPerServer: 8,
  intraServer: { kind: 'switch', gbsPerDirection: 450, latencyUs: 1.5 },
  hostMemoryGiB: 2048,
  hostLinkGbsPerDirection: 64,
  nics: { count: 8, gbps: 400, railOptimized: true, latencyUs: 2 },
  provenance: {
    acceleratorsPerServer: published(dgxH100Guide),
    'intraServer.gbsPerDirection': published(
      dgxH100Guide,
      '900 GB/s bidirectional GPU-to-GPU through NVSwitch',
    ),
    'intraServer.latencyUs': published('NCCL tuning constants (src/graph/tuning.cc)', 'rounded'),
    hostMemoryGiB: published(dgxH100Guide, '2 TB system memory'),
    hostLinkGbsPerDirection: published(dgxH100Guide, 'PCIe Gen5 x16 per GPU'),
    'nics.count': published(dgxH100Guide, '8 x single-port ConnectX-7 for the compute fabric'),
    'nics.gbps': published(dgxH100Guide),
    'nics.latencyUs': published(
      'NVIDIA Quantum-2 InfiniBand switch datasheet plus ConnectX-7 port-to-port latency',
      'rounded up',
    ),
  },
};

/** Every server model in the catalog. */
export const servers: readonly ServerSpec[] = [hgxH100];

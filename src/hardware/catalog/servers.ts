import type { ServerSpec } from '../server.ts';
import { estimated, published } from '../provenance.ts';
import {
  birenBrief,
  birenHotChips34,
  deepseekV3Insights,
  dgxA100Guide,
  dgxB200Guide,
  dgxH200Guide,
  epycGenoaSpecs,
  frontierGuide,
  giteeAscendDoc,
  hiascendA2Networking,
  mi300xDatasheet,
  mi300xPlatform,
  mlperfMi300xSystem,
  ncclTuning,
  nicLatency,
  pcie4Spec,
  pcie5Spec,
  rocmMi250Arch,
} from './sources.ts';

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
    'intraServer.latencyUs': published(ncclTuning, 'rounded'),
    hostMemoryGiB: published(dgxH100Guide, '2 TB system memory'),
    hostLinkGbsPerDirection: published(dgxH100Guide, 'PCIe Gen5 x16 per GPU'),
    'nics.count': published(dgxH100Guide, '8 x single-port ConnectX-7 for the compute fabric'),
    'nics.gbps': published(dgxH100Guide),
    'nics.latencyUs': published(nicLatency, 'rounded up'),
  },
};

/** HGX/DGX A100 320GB: 8 x A100 40 GB on six NVSwitches, 8 x 200 Gb/s HDR ConnectX-6. */
const hgxA100_40g: ServerSpec = {
  id: 'hgx-a100-40g',
  name: 'NVIDIA HGX A100 8-GPU 40GB (DGX A100 320GB)',
  accelerator: 'a100-40g',
  acceleratorsPerServer: 8,
  intraServer: { kind: 'switch', gbsPerDirection: 300, latencyUs: 1.5 },
  hostMemoryGiB: 1024,
  hostLinkGbsPerDirection: 32,
  nics: { count: 8, gbps: 200, railOptimized: true, latencyUs: 2 },
  provenance: {
    acceleratorsPerServer: published(dgxA100Guide),
    'intraServer.gbsPerDirection': published(
      dgxA100Guide,
      'six second-generation NVSwitches, 600 GB/s bidirectional GPU-to-GPU',
    ),
    'intraServer.latencyUs': published(ncclTuning, 'rounded'),
    hostMemoryGiB: published(dgxA100Guide, '1 TB system memory in the 320GB configuration'),
    hostLinkGbsPerDirection: published(
      pcie4Spec,
      'DGX A100: PCIe Gen4 x16 per GPU via PCIe switches',
    ),
    'nics.count': published(
      dgxA100Guide,
      '8 x single-port ConnectX-6 for the compute fabric, one per GPU, each on its own rail in DGX SuperPOD',
    ),
    'nics.gbps': published(dgxA100Guide, '200 Gb/s HDR InfiniBand'),
    'nics.latencyUs': published(nicLatency, 'rounded up'),
  },
};

/** HGX/DGX A100 640GB: as the 320GB system with A100 80 GB GPUs and 2 TB host memory. */
const hgxA100_80g: ServerSpec = {
  ...hgxA100_40g,
  id: 'hgx-a100-80g',
  name: 'NVIDIA HGX A100 8-GPU 80GB (DGX A100 640GB)',
  accelerator: 'a100-80g',
  hostMemoryGiB: 2048,
  provenance: {
    ...hgxA100_40g.provenance,
    hostMemoryGiB: published(dgxA100Guide, '2 TB system memory in the 640GB configuration'),
  },
};

/** HGX H800: the HGX H100 board with NVLink cut to 400 GB/s bidirectional per GPU. */
const hgxH800: ServerSpec = {
  id: 'hgx-h800',
  name: 'NVIDIA HGX H800 8-GPU',
  accelerator: 'h800',
  acceleratorsPerServer: 8,
  intraServer: { kind: 'switch', gbsPerDirection: 200, latencyUs: 1.5 },
  hostMemoryGiB: 2048,
  hostLinkGbsPerDirection: 64,
  nics: { count: 8, gbps: 400, railOptimized: true, latencyUs: 2 },
  provenance: {
    acceleratorsPerServer: published(deepseekV3Insights, '8 GPUs per node on NVLink/NVSwitch'),
    'intraServer.gbsPerDirection': published(
      deepseekV3Insights,
      'H800 NVLink 400 GB/s bidirectional (H100: 900)',
    ),
    'intraServer.latencyUs': published(ncclTuning, 'rounded'),
    hostMemoryGiB: estimated(
      'HGX H800 systems are built on the HGX H100 chassis designs, whose DGX form has 2 TB',
      dgxH100Guide,
    ),
    hostLinkGbsPerDirection: published(pcie5Spec, 'PCIe Gen5 x16 per GPU as on HGX H100'),
    'nics.count': published(deepseekV3Insights, 'eight 400G InfiniBand CX7 NICs per node'),
    'nics.gbps': published(deepseekV3Insights),
    'nics.latencyUs': published(nicLatency, 'rounded up'),
  },
};

/** HGX/DGX H200: the HGX H100 design with H200 GPUs. */
const hgxH200: ServerSpec = {
  id: 'hgx-h200',
  name: 'NVIDIA HGX H200 8-GPU (DGX H200)',
  accelerator: 'h200',
  acceleratorsPerServer: 8,
  intraServer: { kind: 'switch', gbsPerDirection: 450, latencyUs: 1.5 },
  hostMemoryGiB: 2048,
  hostLinkGbsPerDirection: 64,
  nics: { count: 8, gbps: 400, railOptimized: true, latencyUs: 2 },
  provenance: {
    acceleratorsPerServer: published(dgxH200Guide),
    'intraServer.gbsPerDirection': published(
      dgxH200Guide,
      '900 GB/s bidirectional GPU-to-GPU through four NVSwitches',
    ),
    'intraServer.latencyUs': published(ncclTuning, 'rounded'),
    hostMemoryGiB: published(dgxH200Guide, '2 TB system memory'),
    hostLinkGbsPerDirection: published(pcie5Spec, 'PCIe Gen5 x16 per GPU'),
    'nics.count': published(dgxH200Guide, '8 x single-port ConnectX-7 for the compute fabric'),
    'nics.gbps': published(dgxH200Guide, '400 Gb/s NDR'),
    'nics.latencyUs': published(nicLatency, 'rounded up'),
  },
};

/** HGX/DGX B200: 8 x B200 on two NVLink 5 switches, 8 x 400 Gb/s ConnectX-7. */
const hgxB200: ServerSpec = {
  id: 'hgx-b200',
  name: 'NVIDIA HGX B200 8-GPU (DGX B200)',
  accelerator: 'b200',
  acceleratorsPerServer: 8,
  intraServer: { kind: 'switch', gbsPerDirection: 900, latencyUs: 1.5 },
  hostMemoryGiB: 2048,
  hostLinkGbsPerDirection: 64,
  nics: { count: 8, gbps: 400, railOptimized: true, latencyUs: 2 },
  provenance: {
    acceleratorsPerServer: published(dgxB200Guide),
    'intraServer.gbsPerDirection': published(
      dgxB200Guide,
      '14.4 TB/s aggregate / 8 GPUs = 1.8 TB/s bidirectional = 900 GB/s per direction',
    ),
    'intraServer.latencyUs': published(ncclTuning, 'rounded'),
    hostMemoryGiB: published(dgxB200Guide, '2 TB using 32 DIMMs'),
    hostLinkGbsPerDirection: published(pcie5Spec, 'Xeon 8570 hosts are PCIe Gen5'),
    'nics.count': published(dgxB200Guide, '8 x ConnectX-7 single-port cards for the cluster'),
    'nics.gbps': published(dgxB200Guide, '400 Gb/s'),
    'nics.latencyUs': published(nicLatency, 'rounded up'),
  },
};

/**
 * HPE Cray EX235a / Frontier node: 1 EPYC, 4 MI250X OAMs = 8 GCD devices (the catalog's
 * MI250X device is one GCD). Real wiring: each GCD has 7 GPU-facing Infinity Fabric links of
 * 50 GB/s per direction: 4 to its sibling GCD in the same package (200 GB/s) and 3 spread over
 * GCDs in other packages (1 or 2 links to some of them, none to others, which then take two
 * hops). The available kinds cannot express that graph, so it is modeled as a uniform full
 * mesh with one 50 GB/s lane per peer: 7 lanes per GCD, the real per-GCD link count, so each
 * GCD's total injection bandwidth (350 GB/s per direction) is right; the sibling pair is
 * under-stated (50 vs 200) and unlinked pairs are over-stated (50 vs a two-hop path).
 */
const mi250x4oam: ServerSpec = {
  id: 'mi250x-4oam',
  name: 'HPE Cray EX235a node (4 x MI250X OAM = 8 GCDs, as in Frontier)',
  accelerator: 'mi250x',
  acceleratorsPerServer: 8,
  intraServer: { kind: 'full-mesh', laneGbsPerDirection: 50, lanesPerPeer: 1, latencyUs: 2 },
  hostMemoryGiB: 512,
  hostLinkGbsPerDirection: 36,
  nics: { count: 4, gbps: 200, railOptimized: false, latencyUs: 2 },
  provenance: {
    acceleratorsPerServer: published(
      frontierGuide,
      '4 x MI250X with 2 GCDs each = 8 GCDs, seen as 8 GPUs',
    ),
    'intraServer.laneGbsPerDirection': published(rocmMi250Arch, '50 GB/s per link per direction'),
    'intraServer.lanesPerPeer': estimated(
      'uniform approximation of the real graph (4 links to the sibling GCD, 0-2 to each other GCD, 7 in all): one lane per peer keeps the per-GCD total at 7 links',
      frontierGuide,
    ),
    'intraServer.latencyUs': estimated(
      'RCCL over xGMI, ~1 us launch plus the hop, rounded to 2 us (no AMD figure)',
    ),
    hostMemoryGiB: published(frontierGuide, '512 GB DDR4'),
    hostLinkGbsPerDirection: published(frontierGuide, 'CPU-GCD Infinity Fabric 36+36 GB/s'),
    'nics.count': published(frontierGuide, '4 x HPE Slingshot NICs, one per MI250X'),
    'nics.gbps': published(frontierGuide, '200 Gb/s (25 GB/s) each'),
    'nics.latencyUs': estimated(
      'Slingshot small-message latency across one switch is ~2 us end to end including the NIC',
    ),
  },
};

/** AMD Instinct MI300X platform: 8 OAMs, every pair directly linked by Infinity Fabric. */
const mi300x8oam: ServerSpec = {
  id: 'mi300x-8oam',
  name: 'AMD Instinct MI300X Platform (8 x OAM, Infinity Fabric full mesh)',
  accelerator: 'mi300x',
  acceleratorsPerServer: 8,
  intraServer: { kind: 'full-mesh', laneGbsPerDirection: 64, lanesPerPeer: 1, latencyUs: 2 },
  hostMemoryGiB: 1536,
  hostLinkGbsPerDirection: 64,
  nics: { count: 8, gbps: 400, railOptimized: true, latencyUs: 2 },
  provenance: {
    acceleratorsPerServer: published(mi300xPlatform),
    'intraServer.laneGbsPerDirection': published(
      mi300xDatasheet,
      '128 GB/s bidirectional per link = 64 per direction',
    ),
    'intraServer.lanesPerPeer': published(mi300xPlatform, '7 links per GPU, one to each peer'),
    'intraServer.latencyUs': estimated(
      'RCCL over xGMI, ~1 us launch plus the hop, rounded to 2 us (no AMD figure)',
    ),
    hostMemoryGiB: published(mlperfMi300xSystem, '1.5 TiB (24 x 64 GB DDR5)'),
    hostLinkGbsPerDirection: published(pcie5Spec, 'PCIe Gen5 x16 per GPU'),
    'nics.count': estimated(
      'one NIC per GPU (rail-optimized), as MI300X cloud and MLPerf training systems deploy them; AMD does not fix the NIC in the platform',
    ),
    'nics.gbps': estimated('400 Gb/s (ConnectX-7 NDR or AMD Pollara 400) in current deployments'),
    'nics.latencyUs': published(nicLatency, 'rounded up'),
  },
};

/** Huawei Atlas 800T A2: 8 x Ascend 910B on an HCCS full mesh, one 200GE port per NPU. */
const atlas800tA2: ServerSpec = {
  id: 'atlas-800t-a2',
  name: 'Huawei Atlas 800T A2 training server (8 x Ascend 910B)',
  accelerator: 'ascend-910b',
  acceleratorsPerServer: 8,
  intraServer: { kind: 'full-mesh', laneGbsPerDirection: 28, lanesPerPeer: 1, latencyUs: 2 },
  hostMemoryGiB: 1024,
  hostLinkGbsPerDirection: 32,
  nics: { count: 8, gbps: 200, railOptimized: true, latencyUs: 2 },
  provenance: {
    acceleratorsPerServer: published(giteeAscendDoc, '8 NPUs per server, fully interconnected'),
    'intraServer.laneGbsPerDirection': estimated(
      '392 GB/s HCCS per NPU over 7 peers = 56 GB/s bidirectional per link = 28 per direction (see the ascend-910b entry)',
    ),
    'intraServer.lanesPerPeer': published(giteeAscendDoc, 'HCCS full mesh: one link per peer'),
    'intraServer.latencyUs': estimated('HCCL small-message latency not published; 2 us assumed'),
    hostMemoryGiB: estimated(
      'not fixed by Huawei (4 x Kunpeng 920 with 32 DIMM slots); 32 x 32 GB = 1 TB is a common build',
    ),
    hostLinkGbsPerDirection: estimated('PCIe 4.0 x16 per NPU from the Kunpeng hosts', pcie4Spec),
    'nics.count': published(hiascendA2Networking, '8 NPU network ports, one per NPU'),
    'nics.gbps': estimated(
      'the NPU-integrated RoCE ports are 200GE on Atlas A2 training products (100GE on the Ascend 910 generation)',
    ),
    'nics.latencyUs': estimated('RoCE small-message latency across one switch, ~2 us'),
  },
};

const birenNicsCount = estimated(
  'not published; one NIC per GPU (rail-optimized) assumed, as in the 8-GPU training servers the design brief targets',
  birenBrief,
);
const birenNicsGbps = estimated(
  'not published; 200 Gb/s RoCE, the common rate of domestic training clusters of this generation (e.g. Atlas A2 200GE ports)',
);
const birenHostMemory = estimated(
  'not published; 1 TB (32 x 32 GB DIMMs on a two-socket host) assumed, the same class as DGX A100 320GB',
);
const birenLatency = estimated(
  'no published BLink latency; ~1 us launch plus the hop, rounded to 2 us',
);

/**
 * A Biren 8-OAM baseboard: every pair of GPUs directly linked (point-to-point full mesh).
 * 8 lanes per GPU at 32 GB/s per direction, 7 of them used, one per peer.
 */
function birenOam8(options: {
  id: string;
  name: string;
  accelerator: string;
  lanesSource: string;
}): ServerSpec {
  return {
    id: options.id,
    name: options.name,
    accelerator: options.accelerator,
    acceleratorsPerServer: 8,
    intraServer: { kind: 'full-mesh', laneGbsPerDirection: 32, lanesPerPeer: 1, latencyUs: 2 },
    hostMemoryGiB: 1024,
    hostLinkGbsPerDirection: 64,
    nics: { count: 8, gbps: 200, railOptimized: true, latencyUs: 2 },
    provenance: {
      acceleratorsPerServer: published(birenBrief, 'OAM modules, 8 per baseboard'),
      'intraServer.laneGbsPerDirection': published(
        birenBrief,
        '64 GB/s per lane bidirectional = 32 per direction',
      ),
      'intraServer.lanesPerPeer': published(
        options.lanesSource,
        'point-to-point full mesh of 8: with 8 lanes per GPU, 7 go one to each peer (the 8th is spare)',
      ),
      'intraServer.latencyUs': birenLatency,
      hostMemoryGiB: birenHostMemory,
      hostLinkGbsPerDirection: published(pcie5Spec, 'PCIe 5.0 x16 per GPU'),
      'nics.count': birenNicsCount,
      'nics.gbps': birenNicsGbps,
      'nics.latencyUs': published(nicLatency, 'rounded up'),
    },
  };
}

/** 8 x BR104 PCIe cards; no GPU links, peer traffic crosses PCIe. */
const br104Pcie8: ServerSpec = {
  id: 'br104-pcie-8',
  name: 'Biren BR104 8-card PCIe server',
  accelerator: 'br104',
  acceleratorsPerServer: 8,
  intraServer: { kind: 'pcie', gbsPerDirection: 64, latencyUs: 3 },
  hostMemoryGiB: 1024,
  hostLinkGbsPerDirection: 64,
  nics: { count: 4, gbps: 200, railOptimized: false, latencyUs: 2 },
  provenance: {
    acceleratorsPerServer: estimated(
      '8 full-height full-length cards is the usual 4U GPU-server density; Biren publishes no reference server for BR104',
    ),
    'intraServer.gbsPerDirection': published(
      pcie5Spec,
      'peer-to-peer through a PCIe 5.0 switch at x16; copies reach ~80% of this',
    ),
    'intraServer.latencyUs': estimated(
      'a PCIe peer copy through a switch plus launch: ~3 us, above NVLink/BLink because of the switch hop and DMA setup',
    ),
    hostMemoryGiB: birenHostMemory,
    hostLinkGbsPerDirection: published(pcie5Spec, 'PCIe 5.0 x16 per card'),
    'nics.count': estimated(
      'PCIe-card servers usually carry one NIC per two GPUs behind shared PCIe switches; 4 assumed, not rail-optimized',
    ),
    'nics.gbps': birenNicsGbps,
    'nics.latencyUs': published(nicLatency, 'rounded up'),
  },
};

const br100Oam8 = birenOam8({
  id: 'br100-oam-8',
  name: 'Biren Hearten server (8 x BR100 OAM, BLink full mesh)',
  accelerator: 'br100',
  lanesSource: `${birenHotChips34} (8 BLink ports per BR100, 8-OAM Hearten server); ${birenBrief}`,
});
const br106Oam8 = birenOam8({
  id: 'br106-oam-8',
  name: 'Biren BR106 8-OAM baseboard (BLink full mesh)',
  accelerator: 'br106',
  lanesSource: birenBrief,
});
const br166Oam8 = birenOam8({
  id: 'br166-oam-8',
  name: 'Biren BR166 8-OAM baseboard (BLink full mesh)',
  accelerator: 'br166',
  lanesSource: birenBrief,
});
const br110Oam8 = birenOam8({
  id: 'br110-oam-8',
  name: 'Biren BR110 8-OAM baseboard (BLink full mesh)',
  accelerator: 'br110',
  lanesSource: birenBrief,
});

/**
 * A two-socket CPU box: each socket is a `cpu` device; they talk over the socket interconnect
 * (xGMI), modeled with the `pcie` kind at that interconnect's bandwidth. One NIC, no rails.
 */
const cpuHost: ServerSpec = {
  id: 'cpu-host',
  name: 'Two-socket CPU server (2 x EPYC 9654-class)',
  accelerator: 'cpu',
  acceleratorsPerServer: 2,
  intraServer: { kind: 'pcie', gbsPerDirection: 256, latencyUs: 0.5 },
  hostMemoryGiB: 768,
  hostLinkGbsPerDirection: 460.8,
  nics: { count: 1, gbps: 200, railOptimized: false, latencyUs: 2 },
  provenance: {
    acceleratorsPerServer: published(epycGenoaSpecs, 'one- and two-socket platforms'),
    'intraServer.gbsPerDirection': estimated(
      '4 xGMI links x 64 GB/s per direction between the sockets (see the cpu entry); real cross-socket copies reach well under this',
      epycGenoaSpecs,
    ),
    'intraServer.latencyUs': estimated(
      'cross-socket shared-memory message, ~0.5 us (see cpu links)',
    ),
    hostMemoryGiB: estimated(
      'the same DIMMs as the two cpu devices (2 x 384 GB); host memory and device memory are one pool on a CPU box',
    ),
    hostLinkGbsPerDirection: published(
      epycGenoaSpecs,
      'the device is the host: its local DDR5 bandwidth, 12 x 4800 MT/s x 8 B',
    ),
    'nics.count': estimated('one 200 Gb/s NIC, a typical CPU cluster node'),
    'nics.gbps': estimated('200 Gb/s (HDR InfiniBand or 200GbE)'),
    'nics.latencyUs': published(nicLatency, 'rounded up'),
  },
};

/** Every server model in the catalog. */
export const servers: readonly ServerSpec[] = [
  hgxA100_40g,
  hgxA100_80g,
  hgxH100,
  hgxH800,
  hgxH200,
  hgxB200,
  mi250x4oam,
  mi300x8oam,
  atlas800tA2,
  br104Pcie8,
  br100Oam8,
  br106Oam8,
  br166Oam8,
  br110Oam8,
  cpuHost,
];

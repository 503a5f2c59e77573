import type { Provenance } from './provenance.ts';

export type Vendor = 'nvidia' | 'amd' | 'huawei' | 'biren' | 'generic';

/** Dense (non-sparse) peak throughput per number format, in TFLOPS (TOPS for int8); null when the chip has no such path. */
export interface PeakTflops {
  readonly fp32: number;
  readonly tf32: number | null;
  readonly bf16: number | null;
  readonly fp16: number | null;
  readonly fp8: number | null;
  readonly int8: number | null;
  readonly fp4: number | null;
}

export type NumberFormat = keyof PeakTflops;

/** A family of accelerator-to-accelerator links (NVLink, Infinity Fabric, HCCS, BLink, ...). */
export interface AcceleratorLinks {
  /** e.g. `nvlink4`, `infinity-fabric-3`, `hccs`, `blink`, `none`. */
  readonly kind: string;
  /** Bandwidth of one link (one lane group) in one direction, GB/s. */
  readonly gbsPerDirectionPerLink: number;
  /** Links per accelerator. */
  readonly count: number;
  /** One-hop latency of a small message, microseconds. */
  readonly latencyUs: number;
}

export interface HostInterface {
  /** PCIe generation (3, 4, 5, 6). */
  readonly pcieGen: number;
  readonly pcieLanes: number;
  /** Bandwidth to the host in one direction, GB/s (what a host-device copy can reach). */
  readonly gbsPerDirection: number;
  readonly cxl: boolean;
}

/** One accelerator model as the catalog describes it. */
export interface Accelerator {
  readonly id: string;
  readonly vendor: Vendor;
  readonly name: string;
  /** Device memory, GiB as marketed (HBM capacities are binary: 80 GB = 80 GiB of HBM). */
  readonly memoryGiB: number;
  readonly memoryType: string;
  readonly memoryBandwidthGBs: number;
  /** On-chip SRAM: last-level cache plus software-managed scratchpad, MiB. */
  readonly onChipSramMiB: number;
  readonly peakTflops: PeakTflops;
  readonly tdpWatts: number;
  readonly links: AcceleratorLinks;
  readonly hostInterface: HostInterface;
  /** Compute dies in the package; dual-die parts appear as one device. */
  readonly dies: number;
  /** Die-to-die bandwidth for multi-die parts, GB/s; null for single-die parts. */
  readonly dieToDieGBs: number | null;
  readonly formFactor: 'sxm' | 'oam' | 'pcie' | 'socket' | 'host';
  /** The server this accelerator ships in when only `--accelerator` and `--gpus` are given. */
  readonly standardServer: string;
  /**
   * Provenance of every number above, keyed by field path (`memoryGiB`, `peakTflops.bf16`,
   * `links.gbsPerDirectionPerLink`, ...). A test checks no number is left without one.
   */
  readonly provenance: Readonly<Record<string, Provenance>>;
}

import type { Provenance } from './provenance.ts';

/**
 * How the accelerators inside one server talk to each other.
 * - `full-mesh`: every pair directly linked; each pair gets `lanesPerPeer` lanes.
 * - `switch`: every accelerator attaches to a switch (NVSwitch-like) with its full link bandwidth.
 * - `pcie`: no accelerator links; peer traffic crosses PCIe (and the host bridge).
 */
export type IntraServerFabric =
  | {
      readonly kind: 'full-mesh';
      /** Bandwidth of one lane in one direction, GB/s. */
      readonly laneGbsPerDirection: number;
      readonly lanesPerPeer: number;
      readonly latencyUs: number;
    }
  | {
      readonly kind: 'switch';
      /** Each accelerator's bandwidth into the switch, one direction, GB/s. */
      readonly gbsPerDirection: number;
      readonly latencyUs: number;
    }
  | {
      readonly kind: 'pcie';
      /** Peer-to-peer bandwidth through the PCIe switch or root complex, one direction, GB/s. */
      readonly gbsPerDirection: number;
      readonly latencyUs: number;
    };

export interface NicSpec {
  readonly count: number;
  /** Line rate of one NIC, Gb/s (bits). */
  readonly gbps: number;
  /** One NIC per accelerator, each on its own rail (a leaf switch per local index). */
  readonly railOptimized: boolean;
  /** Small-message latency across one switch hop, microseconds. */
  readonly latencyUs: number;
}

/** A server model: what one box holds and how it is wired. */
export interface ServerSpec {
  readonly id: string;
  readonly name: string;
  readonly accelerator: string;
  readonly acceleratorsPerServer: number;
  readonly intraServer: IntraServerFabric;
  readonly hostMemoryGiB: number;
  /** Each accelerator's bandwidth to host memory, one direction, GB/s (PCIe or CXL). */
  readonly hostLinkGbsPerDirection: number;
  readonly nics: NicSpec;
  readonly provenance: Readonly<Record<string, Provenance>>;
}

import { unknownIdError, type ErrorWhere } from '../../core/index.ts';
import type { Accelerator } from '../accelerator.ts';
import type { ServerSpec } from '../server.ts';
import { accelerators } from './accelerators.ts';
import { servers } from './servers.ts';

/** Every accelerator in the catalog, in catalog order. */
export function listAccelerators(): readonly Accelerator[] {
  return accelerators;
}

/** The accelerator with `id`; an UNKNOWN_ID error suggesting the nearest ids otherwise. */
export function getAccelerator(id: string, where: ErrorWhere = {}): Accelerator {
  const found = accelerators.find((a) => a.id === id);
  if (found === undefined)
    throw unknownIdError(
      'accelerator',
      id,
      accelerators.map((a) => a.id),
      where,
    );
  return found;
}

export function listServers(): readonly ServerSpec[] {
  return servers;
}

export function getServer(id: string, where: ErrorWhere = {}): ServerSpec {
  const found = servers.find((s) => s.id === id);
  if (found === undefined)
    throw unknownIdError(
      'server',
      id,
      servers.map((s) => s.id),
      where,
    );
  return found;
}

/** The standard server of an accelerator: what `--accelerator ID --gpus N` builds from. */
export function standardServerOf(accelerator: Accelerator): ServerSpec {
  return getServer(accelerator.standardServer);
}

/**
 * The catalog entry as `cube hardware --json` prints it (the design brief's contract):
 * `{id, vendor, name, memoryGiB, memoryBandwidthGBs, peakTflops: {...}, ...}`.
 */
export function acceleratorToJson(a: Accelerator): Record<string, unknown> {
  return {
    id: a.id,
    vendor: a.vendor,
    name: a.name,
    memoryGiB: a.memoryGiB,
    memoryBandwidthGBs: a.memoryBandwidthGBs,
    peakTflops: { ...a.peakTflops },
    memoryType: a.memoryType,
    onChipSramMiB: a.onChipSramMiB,
    tdpWatts: a.tdpWatts,
    links: { ...a.links },
    hostInterface: { ...a.hostInterface },
    dies: a.dies,
    dieToDieGBs: a.dieToDieGBs,
    formFactor: a.formFactor,
    standardServer: a.standardServer,
    provenance: a.provenance,
  };
}

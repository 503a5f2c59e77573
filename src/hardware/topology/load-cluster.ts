import { z } from 'zod';
import {
  CubeError,
  loadStructuredFile,
  schemaError,
  unknownIdError,
  type ErrorWhere,
} from '../../core/index.ts';
import { getAccelerator, listServers } from '../catalog/index.ts';
import type { ServerSpec } from '../server.ts';
import type { Circuit, Cluster, FabricTier, ServerRun, SuperNode } from './cluster.ts';
import {
  clusterFileSchema,
  type ClusterFile,
  type ServerGroupEntry,
  type ServerModelEntry,
} from './cluster-schema.ts';

/**
 * Loads a cluster file (YAML or JSON) and resolves it. Errors name the file and the path
 * inside it: INVALID_FILE for a schema violation, UNKNOWN_ID (with the nearest ids) for a
 * server, accelerator or super-node that does not exist, FILE_UNREADABLE for a syntax error.
 */
export function loadClusterFile(file: string): Cluster {
  let parsed: ClusterFile;
  try {
    parsed = loadStructuredFile(file, clusterFileSchema);
  } catch (error) {
    throw withDiscriminatorValues(error);
  }
  return resolveCluster(parsed, { file });
}

/**
 * Validates and resolves a cluster description given as a value (what a cluster file parses
 * to); `file` only labels errors.
 */
export function clusterFromDescription(value: unknown, options: { file?: string } = {}): Cluster {
  const parsed = clusterFileSchema.safeParse(value);
  if (!parsed.success)
    throw withDiscriminatorValues(
      schemaError(parsed.error, {
        ...(options.file === undefined
          ? { what: 'the cluster description' }
          : { file: options.file }),
      }),
    );
  return resolveCluster(parsed.data, options);
}

/** A bad `kind` reports its allowed values the way a bad enum does. */
function withDiscriminatorValues(error: unknown): unknown {
  if (!(error instanceof CubeError) || error.where.allowed !== undefined) return error;
  if (!(error.cause instanceof z.ZodError)) return error;
  const first = error.cause.issues[0];
  if (first === undefined || !('options' in first) || !Array.isArray(first.options)) return error;
  return new CubeError(error.code, error.message, {
    where: { ...error.where, allowed: first.options.map(String) },
    cause: error.cause,
  });
}

function resolveCluster(file: ClusterFile, options: { file?: string }): Cluster {
  const at = (path: string): ErrorWhere =>
    options.file === undefined ? { path } : { file: options.file, path };
  const invalid = (path: string, message: string): CubeError =>
    new CubeError(
      'INVALID_FILE',
      `${options.file ?? 'the cluster description'} is invalid: ${path}: ${message}`,
      { where: at(path) },
    );

  const catalogServers = listServers();
  const inline = new Map<string, ServerSpec>();
  (file.serverModels ?? []).forEach((entry, i) => {
    const path = `serverModels[${i}]`;
    if (inline.has(entry.id))
      throw invalid(`${path}.id`, `server model "${entry.id}" is defined twice`);
    if (catalogServers.some((s) => s.id === entry.id))
      throw invalid(
        `${path}.id`,
        `"${entry.id}" is a catalog server; give the inline model another id`,
      );
    getAccelerator(entry.accelerator, at(`${path}.accelerator`));
    inline.set(entry.id, inlineServer(entry));
  });
  const knownServerIds = [...inline.keys(), ...catalogServers.map((s) => s.id)];
  const lookupServer = (id: string, path: string): ServerSpec => {
    const found = inline.get(id) ?? catalogServers.find((s) => s.id === id);
    if (found === undefined) throw unknownIdError('server', id, knownServerIds, at(path));
    return found;
  };

  const runs: ServerRun[] = [];
  const superNodes: SuperNode[] = [];
  let nextServer = 0;
  let nextDevice = 0;
  const addGroups = (
    groups: readonly ServerGroupEntry[],
    path: string,
    sn: number | null,
  ): void => {
    groups.forEach((group, i) => {
      const model = lookupServer(group.server, `${path}[${i}].server`);
      const accelerator = getAccelerator(model.accelerator, at(`${path}[${i}].server`));
      const used = group.accelerators ?? model.acceleratorsPerServer;
      if (used > model.acceleratorsPerServer)
        throw invalid(
          `${path}[${i}].accelerators`,
          `${model.id} holds ${model.acceleratorsPerServer} accelerators; cannot use ${used}`,
        );
      runs.push({
        model,
        accelerator,
        count: group.count,
        devicesPerServer: used,
        firstServer: nextServer,
        firstDevice: nextDevice,
        superNode: sn,
      });
      nextServer += group.count;
      nextDevice += group.count * used;
    });
  };

  if (file.servers !== undefined) addGroups(file.servers, 'servers', null);
  (file.superNodes ?? []).forEach((group, g) => {
    for (let copy = 0; copy < group.count; copy += 1) {
      const index = superNodes.length;
      const firstServer = nextServer;
      const firstDevice = nextDevice;
      addGroups(group.servers, `superNodes[${g}].servers`, index);
      superNodes.push({
        index,
        id: `sn${index}`,
        firstServer,
        serverCount: nextServer - firstServer,
        firstDevice,
        deviceCount: nextDevice - firstDevice,
        gbsPerDirection: group.gbsPerDirection,
        latencyUs: group.latencyUs,
      });
    }
  });

  let ocs: Cluster['ocs'] = null;
  if (file.ocs !== undefined) {
    const ids = superNodes.map((s) => s.id);
    const seen = new Set<string>();
    const circuits: Circuit[] = file.ocs.circuits.map((circuit, i) => {
      const path = `ocs.circuits[${i}]`;
      const [a, b] = circuit.between.map((name, j) => {
        const index = ids.indexOf(name);
        if (index < 0) throw unknownIdError('super-node', name, ids, at(`${path}.between[${j}]`));
        return index;
      }) as [number, number];
      if (a === b) throw invalid(`${path}.between`, `a circuit joins two different super-nodes`);
      const key = `${Math.min(a, b)}-${Math.max(a, b)}`;
      if (seen.has(key))
        throw invalid(
          `${path}.between`,
          `${ids[a] ?? a} and ${ids[b] ?? b} are matched twice; give one entry with the total count`,
        );
      seen.add(key);
      return {
        a,
        b,
        count: circuit.count,
        gbsPerCircuit: circuit.gbsPerCircuit ?? file.ocs?.gbsPerCircuit ?? 0,
      };
    });
    ocs = { latencyUs: file.ocs.latencyUs, circuits };
  }

  let fabric: Cluster['fabric'] = null;
  if (file.fabric !== undefined) {
    const kind = file.fabric.kind;
    const defaultNames = [kind === 'rail-optimized' ? 'rail' : 'leaf', 'spine', 'core'];
    const count = file.fabric.tiers.length;
    const tiers: FabricTier[] = file.fabric.tiers.map((tier, i) => ({
      name: tier.name ?? defaultNames[i] ?? `tier${i + 1}`,
      serversPerGroup: i === count - 1 ? null : (tier.serversPerGroup ?? null),
      oversubscription: tier.oversubscription,
    }));
    fabric = { kind, tiers, switchLatencyUs: file.fabric.switchLatencyUs };
  }

  return {
    name: file.name,
    description: file.description ?? '',
    runs,
    superNodes,
    fabric,
    ocs,
    serverCount: nextServer,
    deviceCount: nextDevice,
  };
}

function inlineServer(entry: ServerModelEntry): ServerSpec {
  return {
    id: entry.id,
    name: entry.name ?? entry.id,
    accelerator: entry.accelerator,
    acceleratorsPerServer: entry.acceleratorsPerServer,
    intraServer: entry.intraServer,
    hostMemoryGiB: entry.hostMemoryGiB,
    hostLinkGbsPerDirection: entry.hostLinkGbsPerDirection,
    nics: entry.nics,
    provenance: {},
  };
}

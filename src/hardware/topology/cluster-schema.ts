import { z } from 'zod';

/**
 * The cluster file: what a human writes to describe a cluster (YAML or JSON). It reads
 * top-down: server models not in the catalog, then groups of identical servers (or groups of
 * identical super-nodes holding such groups), then the packet fabric and the optical circuit
 * switch that join them. Ids are resolved against the catalog after this schema passes.
 */

const positive = z.number().positive();
const nonNegative = z.number().nonnegative();
const positiveInt = z.int().positive();

const intraServerSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('full-mesh'),
    laneGbsPerDirection: positive,
    lanesPerPeer: positiveInt,
    latencyUs: nonNegative,
  }),
  z.strictObject({ kind: z.literal('switch'), gbsPerDirection: positive, latencyUs: nonNegative }),
  z.strictObject({ kind: z.literal('pcie'), gbsPerDirection: positive, latencyUs: nonNegative }),
]);

const nicSchema = z.strictObject({
  count: z.int().nonnegative(),
  gbps: positive,
  railOptimized: z.boolean().default(false),
  latencyUs: nonNegative,
});

/** A server model defined in the file: the fields of a catalog ServerSpec, minus provenance. */
const serverModelSchema = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1).optional(),
  accelerator: z.string().min(1),
  acceleratorsPerServer: positiveInt,
  intraServer: intraServerSchema,
  hostMemoryGiB: nonNegative,
  hostLinkGbsPerDirection: positive,
  nics: nicSchema,
});

/** `count` identical servers of model `server`, optionally using only the first `accelerators`. */
const serverGroupSchema = z.strictObject({
  server: z.string().min(1),
  count: positiveInt,
  accelerators: positiveInt.optional(),
});

/** `count` identical super-nodes: servers whose accelerators are all-to-all connected. */
const superNodeGroupSchema = z.strictObject({
  count: positiveInt,
  servers: z.array(serverGroupSchema).min(1),
  /** Each accelerator's bandwidth into the super-node fabric, one direction, GB/s. */
  gbsPerDirection: positive,
  /** Accelerator-to-accelerator latency across the super-node fabric, microseconds. */
  latencyUs: nonNegative,
});

const tierSchema = z.strictObject({
  name: z.string().min(1).optional(),
  /** Servers under one group of this tier (a leaf or rail group, a pod); absent on the top tier. */
  serversPerGroup: positiveInt.optional(),
  /** Bandwidth into a group from below over bandwidth out of it upward (2 means 2:1). */
  oversubscription: z.number().min(1).default(1),
});

const fabricFields = {
  tiers: z.array(tierSchema).min(1).max(3),
  /** Latency added by each switch traversal above the first tier (up and down), microseconds. */
  switchLatencyUs: nonNegative.default(0.5),
};

const fabricSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('clos'), ...fabricFields }),
  z.strictObject({ kind: z.literal('rail-optimized'), ...fabricFields }),
]);

const circuitSchema = z.strictObject({
  between: z.tuple([z.string().min(1), z.string().min(1)]),
  count: positiveInt,
  gbsPerCircuit: positive.optional(),
});

const ocsSchema = z.strictObject({
  /** Accelerator-to-accelerator latency across one circuit, microseconds. */
  latencyUs: nonNegative,
  /** Bandwidth of one circuit, one direction, GB/s (a circuit may override it). */
  gbsPerCircuit: positive,
  circuits: z.array(circuitSchema),
});

/** The most servers a cluster file may describe (over 8 million accelerators at 8 each). */
export const maxClusterServers = 1_048_576;
/** The most super-nodes a cluster file may describe. */
export const maxSuperNodes = 65_536;

/** The schema of a cluster file. */
export const clusterFileSchema = z
  .strictObject({
    name: z.string().min(1),
    description: z.string().optional(),
    serverModels: z.array(serverModelSchema).optional(),
    servers: z.array(serverGroupSchema).min(1).optional(),
    superNodes: z.array(superNodeGroupSchema).min(1).optional(),
    fabric: fabricSchema.optional(),
    ocs: ocsSchema.optional(),
  })
  .superRefine((file, ctx) => {
    const issue = (path: PropertyKey[], message: string): void => {
      ctx.addIssue({ code: 'custom', path, message });
    };
    if ((file.servers === undefined) === (file.superNodes === undefined))
      issue(
        [],
        'give exactly one of `servers` (groups of servers) or `superNodes` (groups of super-nodes holding servers)',
      );
    if (file.ocs !== undefined && file.superNodes === undefined)
      issue(['ocs'], 'an optical circuit switch joins super-nodes; this file defines none');
    const tiers = file.fabric?.tiers ?? [];
    tiers.forEach((tier, i) => {
      const top = i === tiers.length - 1;
      if (top && tier.serversPerGroup !== undefined)
        issue(
          ['fabric', 'tiers', i, 'serversPerGroup'],
          'the top tier spans the whole cluster; give serversPerGroup only on the tiers below it',
        );
      if (!top && tier.serversPerGroup === undefined)
        issue(
          ['fabric', 'tiers', i, 'serversPerGroup'],
          'required below the top tier: how many servers one group of this tier holds',
        );
      if (top && tier.oversubscription !== 1)
        issue(
          ['fabric', 'tiers', i, 'oversubscription'],
          'the top tier has no uplinks; oversubscription applies to traffic leaving a lower tier',
        );
      const below = tiers[i - 1]?.serversPerGroup;
      if (!top && below !== undefined && tier.serversPerGroup !== undefined) {
        if (tier.serversPerGroup <= below || tier.serversPerGroup % below !== 0)
          issue(
            ['fabric', 'tiers', i, 'serversPerGroup'],
            `must be a larger multiple of the tier below (${below})`,
          );
      }
    });
    const servers = (file.servers ?? []).reduce((n, g) => n + g.count, 0);
    const superNodes = (file.superNodes ?? []).reduce((n, g) => n + g.count, 0);
    // Loading builds one record per super-node and topologies walk every server: a count of
    // 10^15 would hang or exhaust memory, so sizes past any real cluster are refused here.
    if (superNodes > maxSuperNodes)
      issue(['superNodes'], `${superNodes} super-nodes is more than the ${maxSuperNodes} allowed`);
    const allServers = (file.superNodes ?? []).reduce(
      (n, g) => n + g.count * g.servers.reduce((m, s) => m + s.count, 0),
      servers,
    );
    if (allServers > maxClusterServers)
      issue(
        [file.servers === undefined ? 'superNodes' : 'servers'],
        `${allServers} servers is more than the ${maxClusterServers} allowed`,
      );
    if (file.fabric === undefined && superNodes === 0 && servers > 1)
      issue(['fabric'], 'required: more than one server needs a fabric to join them');
    if (file.fabric === undefined && file.ocs === undefined && superNodes > 1)
      issue(
        ['ocs'],
        'required: more than one super-node needs an OCS or a packet fabric to join them',
      );
  });

/** A cluster file as it parses (defaults filled in, ids not yet resolved). */
export type ClusterFile = z.output<typeof clusterFileSchema>;
/** An inline server model as it parses. */
export type ServerModelEntry = z.output<typeof serverModelSchema>;
/** A group of identical servers as it parses. */
export type ServerGroupEntry = z.output<typeof serverGroupSchema>;

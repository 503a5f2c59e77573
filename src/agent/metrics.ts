import { request } from 'node:http';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Counter, Gauge, Registry } from 'prom-client';
import { z } from 'zod';
import { buildInfo, registerProcessMetrics } from '../core/index.ts';
import { daemonFailureKinds } from '../ckpt/daemon/index.ts';
import { checkpointLevels, rankStates } from './protocol.ts';

/** What the agent's registry reads at each scrape. */
export interface AgentMetricsSource {
  /** The checkpoint daemon's local API socket (`GET /v1/counters`). */
  readonly ckptSocketPath: string;
  /** The level roots on this node; L3 is the shared root of the jobs' durable copies. */
  levelRoots(): { readonly L1: string; readonly L2: string; readonly L3: string | null };
  /** The state of each rank this agent supervises. */
  rankStates(): readonly (typeof rankStates)[number][];
  /** Items waiting to go to the control plane, per outbox. */
  outboxItems(): { readonly events: number; readonly logs: number };
}

const countersSchema = z.object({
  replicatedBytes: z.number().min(0),
  replicationSeconds: z.number().min(0),
  persistedBytes: z.number().min(0),
  persistSeconds: z.number().min(0),
  failures: z.record(z.string(), z.number().min(0)),
  queued: z.int().min(0),
  running: z.int().min(0),
  jobs: z.array(
    z.object({
      job: z.string(),
      newestBytes: z.record(z.string(), z.number().min(0).nullable()),
    }),
  ),
});
type DaemonCounters = z.infer<typeof countersSchema>;

/** How long one scrape waits for the daemon before reporting it down. */
const daemonTimeoutMs = 2000;

/**
 * The node agent's Prometheus registry: the Node process (`cube_agent_` prefix), build info,
 * its ranks and outboxes, and its checkpoint daemon's figures (`cube_ckpt_*`), read from the
 * daemon's local API at each scrape, with the bytes each level holds on this node.
 */
export function createAgentMetrics(source: AgentMetricsSource): Registry {
  const registry = new Registry();
  registerProcessMetrics(registry, 'cube_agent_');
  const info = buildInfo();
  new Gauge({
    name: 'cube_build_info',
    help: 'Always 1; the labels say which Cube build serves these metrics',
    labelNames: ['version', 'commit', 'node_version'],
    registers: [registry],
  }).set({ version: info.version, commit: info.commit, node_version: info.nodeVersion }, 1);

  new Gauge({
    name: 'cube_agent_ranks',
    help: 'Ranks this agent supervises, by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const counts = new Map<string, number>(rankStates.map((s) => [s, 0]));
      for (const s of source.rankStates()) counts.set(s, (counts.get(s) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'cube_agent_outbox_items',
    help: 'Events and log chunks waiting to be sent to the control plane',
    labelNames: ['outbox'],
    registers: [registry],
    collect() {
      const items = source.outboxItems();
      this.set({ outbox: 'events' }, items.events);
      this.set({ outbox: 'logs' }, items.logs);
    },
  });

  // One daemon read per scrape feeds every cube_ckpt_* metric: registry.metrics() calls every
  // collect in one synchronous loop, the first starts the read and the others join it.
  let pending: Promise<DaemonCounters | null> | null = null;
  const daemon = (): Promise<DaemonCounters | null> => {
    pending ??= readDaemonCounters(source.ckptSocketPath).finally(() => (pending = null));
    return pending;
  };
  new Gauge({
    name: 'cube_ckpt_daemon_up',
    help: "1 when the node's checkpoint daemon answered this scrape, else 0",
    registers: [registry],
    async collect() {
      this.set((await daemon()) === null ? 0 : 1);
    },
  });
  const total = (
    name: string,
    help: string,
    value: (c: DaemonCounters) => number,
  ): Counter<string> =>
    new Counter({
      name,
      help,
      registers: [registry],
      async collect() {
        const c = await daemon();
        // A restarted daemon starts again from 0: Prometheus' rate() takes that as a reset.
        this.reset();
        this.inc(c === null ? 0 : value(c));
      },
    });
  total(
    'cube_ckpt_replicated_bytes_total',
    'Shard bytes pushed to the replica peer (L2) since the daemon started',
    (c) => c.replicatedBytes,
  );
  total(
    'cube_ckpt_replication_seconds_total',
    'Seconds spent pushing shards to the replica peer; bytes over seconds is the L2 throughput',
    (c) => c.replicationSeconds,
  );
  total(
    'cube_ckpt_persisted_bytes_total',
    'Shard bytes copied to durable storage (L3) since the daemon started',
    (c) => c.persistedBytes,
  );
  total(
    'cube_ckpt_persist_seconds_total',
    'Seconds spent copying shards to durable storage; bytes over seconds is the L3 throughput',
    (c) => c.persistSeconds,
  );
  new Counter({
    name: 'cube_ckpt_failures_total',
    help: 'Checkpoint work that failed (training goes on), by kind',
    labelNames: ['kind'],
    registers: [registry],
    async collect() {
      const c = await daemon();
      this.reset();
      for (const kind of daemonFailureKinds) this.inc({ kind }, c?.failures[kind] ?? 0);
    },
  });
  new Gauge({
    name: 'cube_ckpt_queue_depth',
    help: 'Committed L1 steps waiting for replication or persistence (queued) or being worked on (running)',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const c = await daemon();
      this.set({ state: 'queued' }, c?.queued ?? 0);
      this.set({ state: 'running' }, c?.running ?? 0);
    },
  });
  new Gauge({
    name: 'cube_ckpt_newest_checkpoint_bytes',
    help: "Bytes of this node's shards in the job's newest checkpoint at the level (sum over nodes: the checkpoint's size)",
    labelNames: ['job_id', 'level'],
    registers: [registry],
    async collect() {
      const c = await daemon();
      this.reset();
      for (const j of c?.jobs ?? [])
        for (const level of checkpointLevels) {
          const bytes = j.newestBytes[level];
          if (bytes !== null && bytes !== undefined) this.set({ job_id: j.job, level }, bytes);
        }
    },
  });
  new Gauge({
    name: 'cube_ckpt_held_bytes',
    help: 'Bytes of checkpoint files on this node per level (L3: the shared store, the same on every node)',
    labelNames: ['level'],
    registers: [registry],
    async collect() {
      const roots = source.levelRoots();
      const jobs = (await daemon())?.jobs.map((j) => j.job) ?? [];
      this.set({ level: 'L1' }, await treeBytes([roots.L1]));
      this.set({ level: 'L2' }, await treeBytes([roots.L2]));
      // Only this node's jobs' folders: the L3 root may be a share holding far more.
      const l3 = roots.L3;
      this.set({ level: 'L3' }, l3 === null ? 0 : await treeBytes(jobs.map((j) => join(l3, j))));
    },
  });
  return registry;
}

/** The daemon's counters from its local API, or null when it does not answer in time. */
function readDaemonCounters(socketPath: string): Promise<DaemonCounters | null> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/v1/counters', timeout: daemonTimeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        try {
          const parsed = countersSchema.safeParse(JSON.parse(text));
          resolve(res.statusCode === 200 && parsed.success ? parsed.data : null);
        } catch {
          resolve(null);
        }
      });
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}

/**
 * The bytes of the regular files under `dirs`, each file once (an L1 step links its slot files;
 * a hard link is not a second copy). A missing folder holds 0.
 */
async function treeBytes(dirs: readonly string[]): Promise<number> {
  const seen = new Set<string>();
  let bytes = 0;
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) await walk(path);
      else if (e.isFile()) {
        try {
          const s = await lstat(path);
          const key = `${s.dev}:${s.ino}`;
          if (seen.has(key)) continue;
          seen.add(key);
          bytes += s.size;
        } catch {
          // Deleted by garbage collection while we walked: it holds nothing any more.
        }
      }
    }
  };
  for (const dir of dirs) await walk(dir);
  return bytes;
}

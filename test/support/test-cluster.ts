// What the end-to-end tests share: polling for a condition, and a real control plane with
// embedded agent processes on loopback, started in temporary directories and stopped cleanly.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane } from '../../src/control/control-plane.ts';
import {
  startEmbeddedAgents,
  stopEmbeddedAgents,
  type EmbeddedAgent,
  type EmbeddedAgentsOptions,
} from '../../src/cli/embedded-cluster.ts';

/**
 * Polls `probe` every `intervalMs` (default 100) until it returns something other than null;
 * fails after `timeoutMs`, naming `what`. With `ignoreErrors`, a probe that throws (a server
 * not up yet) counts as null.
 */
export async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | null>,
  options: { readonly intervalMs?: number; readonly ignoreErrors?: boolean } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await (options.ignoreErrors === true ? probe().catch(() => null) : probe());
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}

/** A running test cluster. */
export interface TestCluster {
  readonly cp: ControlPlane;
  readonly agents: EmbeddedAgent[];
  readonly dataDir: string;
  readonly shmRoot: string;
  /** Stops the agents and the control plane and removes the directories. */
  stop(): Promise<void>;
}

/**
 * Starts a control plane (3 s heartbeat timeout, 0.5 s heartbeats, 0.2 s ticks) and
 * `nodes` + `spares` agent processes, and waits until every node is ready.
 */
export async function startTestCluster(
  prefix: string,
  options: Pick<EmbeddedAgentsOptions, 'nodes' | 'devicesPerNode' | 'spares'> &
    Partial<Pick<EmbeddedAgentsOptions, 'probeCommand' | 'probeIntervalMs'>> & {
      readonly intervalMs?: number;
    },
): Promise<TestCluster> {
  const dataDir = mkdtempSync(join(tmpdir(), `cube-e2e-${prefix}-`));
  const shmRoot = mkdtempSync(join('/dev/shm', `cube-e2e-${prefix}-`));
  const cp = await ControlPlane.start({
    dataDir,
    heartbeatTimeoutMs: 3000,
    heartbeatIntervalMs: 500,
    tickMs: 200,
    // The end-to-end tests inject faults through the API.
    allowFaultInjection: true,
  });
  const { intervalMs, ...agentOptions } = options;
  const agents = startEmbeddedAgents({
    server: cp.url,
    joinToken: cp.tokens.joinToken,
    dataDir: join(dataDir, 'nodes'),
    shmRoot,
    heartbeatMs: 500,
    ...agentOptions,
  });
  const stop = async (): Promise<void> => {
    await stopEmbeddedAgents(agents, shmRoot);
    await cp.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  const total = options.nodes + options.spares;
  try {
    await until(
      'every node to join',
      60_000,
      async () =>
        (await cp.store.listNodes()).filter((n) => n.state === 'ready').length === total
          ? true
          : null,
      intervalMs === undefined ? {} : { intervalMs },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { cp, agents, dataDir, shmRoot, stop };
}

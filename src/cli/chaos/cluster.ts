import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launchAgent, type EmbeddedAgent } from '../embedded-cluster.ts';
import { PartitionProxy } from './partition-proxy.ts';
import type { ServerProcess } from './server-process.ts';

/** One node of a campaign's cluster: its agent and the proxy its control-plane traffic runs through. */
export interface ChaosNode {
  readonly agent: EmbeddedAgent;
  readonly proxy: PartitionProxy;
}

export interface ChaosClusterOptions {
  readonly dataDir: string;
  readonly shmRoot: string;
  readonly nodes: number;
  readonly spares: number;
  readonly heartbeatMs: number;
}

/**
 * The agents of a campaign, named and labelled as `cube up` names them (node-0.., spare-0..,
 * a server each, two super-nodes), each reaching the control plane only through its own
 * partition proxy.
 */
export async function startChaosCluster(
  server: ServerProcess,
  options: ChaosClusterOptions,
): Promise<ChaosNode[]> {
  const total = options.nodes + options.spares;
  const nodes: ChaosNode[] = [];
  for (let i = 0; i < total; i += 1) {
    const spare = i >= options.nodes;
    const name = spare ? `spare-${i - options.nodes}` : `node-${i}`;
    const agent: EmbeddedAgent = {
      name,
      role: spare ? 'spare' : 'worker',
      labels: { server: `srv${i}`, superNode: `sn${i < Math.ceil(total / 2) ? 0 : 1}` },
      dataDir: join(options.dataDir, name),
      l1: join(options.shmRoot, name),
      process: null,
      pid: null,
    };
    mkdirSync(agent.dataDir, { recursive: true, mode: 0o700 });
    mkdirSync(agent.l1, { recursive: true, mode: 0o700 });
    const proxy = new PartitionProxy(() => server.port);
    await proxy.listen();
    const node = { agent, proxy };
    relaunchAgent(node, server, options);
    nodes.push(node);
  }
  return nodes;
}

/** Starts (or, after a node-kill, restarts: the hardware repair) a node's agent. */
export function relaunchAgent(
  node: ChaosNode,
  server: ServerProcess,
  options: Pick<ChaosClusterOptions, 'heartbeatMs' | 'nodes' | 'spares' | 'shmRoot' | 'dataDir'>,
): void {
  launchAgent(node.agent, {
    server: `http://127.0.0.1:${node.proxy.port}`,
    joinToken: server.tokens.joinToken,
    dataDir: options.dataDir,
    shmRoot: options.shmRoot,
    nodes: options.nodes,
    devicesPerNode: 1,
    spares: options.spares,
    heartbeatMs: options.heartbeatMs,
  });
}

/** True while the node's agent process runs. */
export function agentAlive(node: ChaosNode): boolean {
  const child = node.agent.process;
  return child !== null && child.exitCode === null && child.signalCode === null;
}

/** Stops every agent (SIGTERM, then SIGKILL after 5 s) and closes the proxies. */
export async function stopChaosCluster(nodes: readonly ChaosNode[]): Promise<void> {
  await Promise.all(
    nodes.map(async ({ agent, proxy }) => {
      const child = agent.process;
      if (child !== null && child.exitCode === null && child.signalCode === null)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        });
      await proxy.close();
    }),
  );
}

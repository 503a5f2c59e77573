import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CubeError } from '../core/index.ts';

const cubeBin = fileURLToPath(new URL('../../bin/cube.js', import.meta.url));
/**
 * The child runs the CLI the way this process does: compiled when this module is dist/'s
 * JavaScript, the sources through tsx when it is src/'s TypeScript (bin/cube.js, CUBE_CLI_FROM).
 */
const cubeFrom = import.meta.url.endsWith('.ts') ? 'src' : 'dist';

/** One agent process of an embedded cluster. */
export interface EmbeddedAgent {
  readonly name: string;
  readonly role: 'worker' | 'spare';
  readonly labels: Readonly<Record<string, string>>;
  readonly dataDir: string;
  readonly l1: string;
  process: ChildProcess | null;
  pid: number | null;
}

export interface EmbeddedAgentsOptions {
  readonly server: string;
  readonly joinToken: string;
  readonly dataDir: string;
  /** tmpfs root for the nodes' L1 directories. */
  readonly shmRoot: string;
  readonly nodes: number;
  readonly devicesPerNode: number;
  readonly spares: number;
  readonly heartbeatMs?: number;
  /** Each node's `--probe-command`, by node name (none when it returns undefined). */
  readonly probeCommand?: (name: string) => string | undefined;
  /** How often the agents check their devices and probes (the agent's default: 5 s). */
  readonly probeIntervalMs?: number;
  /** Survive the parent (cube up) or die with it (cube demo, tests). */
  readonly detached?: boolean;
}

/**
 * The agents of a cluster on this machine: one `cube agent` process per node, each with its
 * own data directory, L1 directory and ports, as if it were a separate machine. Workers are
 * `node-0 ..`, spares `spare-0 ..`; nodes are labelled with a server each and grouped two
 * super-nodes, so placement and replica peers have a topology to follow.
 */
export function startEmbeddedAgents(options: EmbeddedAgentsOptions): EmbeddedAgent[] {
  const total = options.nodes + options.spares;
  const agents: EmbeddedAgent[] = [];
  for (let i = 0; i < total; i += 1) {
    const spare = i >= options.nodes;
    const name = spare ? `spare-${i - options.nodes}` : `node-${i}`;
    const superNode = `sn${i < Math.ceil(total / 2) ? 0 : 1}`;
    const agent: EmbeddedAgent = {
      name,
      role: spare ? 'spare' : 'worker',
      labels: { server: `srv${i}`, superNode },
      dataDir: join(options.dataDir, name),
      l1: join(options.shmRoot, name),
      process: null,
      pid: null,
    };
    mkdirSync(agent.dataDir, { recursive: true });
    mkdirSync(agent.l1, { recursive: true });
    launchAgent(agent, options);
    agents.push(agent);
  }
  return agents;
}

/** Starts (or restarts) one agent process; its output goes to `<dataDir>/agent.log`. */
export function launchAgent(agent: EmbeddedAgent, options: EmbeddedAgentsOptions): void {
  const log = openSync(join(agent.dataDir, 'agent.log'), 'a');
  const probeCommand = options.probeCommand?.(agent.name);
  const args = [
    cubeBin,
    'agent',
    '--server',
    options.server,
    '--token',
    options.joinToken,
    '--name',
    agent.name,
    '--devices',
    `cpu:${options.devicesPerNode}`,
    '--labels',
    Object.entries(agent.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    '--role',
    agent.role,
    '--data-dir',
    agent.dataDir,
    '--l1',
    agent.l1,
    ...(options.heartbeatMs === undefined ? [] : ['--heartbeat-ms', String(options.heartbeatMs)]),
    ...(probeCommand === undefined ? [] : ['--probe-command', probeCommand]),
    ...(options.probeIntervalMs === undefined
      ? []
      : ['--probe-interval-ms', String(options.probeIntervalMs)]),
  ];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, CUBE_CLI_FROM: cubeFrom },
    stdio: ['ignore', log, log],
    detached: options.detached === true,
  });
  closeSync(log);
  if (options.detached === true) child.unref();
  agent.process = child;
  agent.pid = child.pid ?? null;
  if (agent.pid === null)
    throw new CubeError('INFEASIBLE', `cannot start the agent of ${agent.name}`);
}

/** Stops agents (SIGTERM, then SIGKILL) and removes their L1 directories. */
export async function stopEmbeddedAgents(
  agents: readonly EmbeddedAgent[],
  shmRoot: string,
): Promise<void> {
  await Promise.all(
    agents.map(
      (a) =>
        new Promise<void>((resolve) => {
          const child = a.process;
          if (child === null || child.exitCode !== null || child.signalCode !== null)
            return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
  rmSync(shmRoot, { recursive: true, force: true });
}

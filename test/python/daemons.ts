// Real node checkpoint daemons (`cube ckpt daemon`) for end-to-end tests: "nodes" on this
// machine, each with its own L1, L2, Unix socket and peer port, sharing one L3.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { newMasterKey, peerAccessFor, type PlacedNode } from '../../src/ckpt/daemon/index.ts';
import { repoRoot } from './launcher.ts';

export interface DaemonNode {
  readonly name: string;
  readonly l1: string;
  readonly l2: string;
  readonly socket: string;
  readonly port: number;
  process: ChildProcess | null;
}

/** A node's directories: L1 under `shm`, L2 and the socket under `work`. */
export function makeNode(work: string, shm: string, name: string, port: number): DaemonNode {
  const n = {
    name,
    l1: join(shm, name),
    l2: join(work, name, 'L2'),
    socket: join(work, `${name}.sock`),
    port,
    process: null,
  };
  mkdirSync(n.l1, { recursive: true });
  mkdirSync(n.l2, { recursive: true });
  return n;
}

export interface DaemonOptions {
  readonly work: string;
  readonly l3: string;
  readonly job: string;
  /** Where every rank may run, as a control plane would place them (one static grant). */
  readonly placement: readonly PlacedNode[];
  readonly peers: readonly DaemonNode[];
  readonly replica: DaemonNode;
  readonly l3Every: number;
}

const master = newMasterKey();

/** Starts `n`'s daemon and resolves once it reports ready. */
export async function startDaemon(n: DaemonNode, o: DaemonOptions): Promise<void> {
  const access = join(o.work, `${n.name}-peer-access.json`);
  const grant = peerAccessFor(master, { job: o.job, attempt: 0, nodes: [...o.placement] }, n.name);
  writeFileSync(access, JSON.stringify({ [o.job]: grant }), { mode: 0o600 });
  const args = [
    join(repoRoot, 'bin/cube.js'),
    'ckpt',
    'daemon',
    '--node',
    n.name,
    '--l1',
    n.l1,
    '--l2',
    n.l2,
    '--l3',
    o.l3,
    '--socket',
    n.socket,
    '--listen',
    `127.0.0.1:${n.port}`,
    '--l3-every',
    String(o.l3Every),
    '--replica-peer',
    `${o.replica.name}=127.0.0.1:${o.replica.port}`,
    ...o.peers.flatMap((p) => ['--peer', `${p.name}=127.0.0.1:${p.port}`]),
    '--peer-access',
    access,
  ];
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  n.process = child;
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (log += c));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (out.includes('"ready":true')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`daemon ${n.name} exited ${code}: ${log}${out}`)));
  });
}

/** SIGKILLs `n`'s daemon (a lost node) and resolves when it is gone. */
export function killDaemon(n: DaemonNode): Promise<void> {
  const child = n.process;
  n.process = null;
  if (child === null || child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.on('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function status(
  n: DaemonNode,
): Promise<{ jobs: { inFlight: unknown[]; newest: Record<string, number | null> }[] }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: n.socket, path: '/v1/status' }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve(JSON.parse(body) as never));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Waits until the daemons have replicated and persisted everything they were given. */
export async function settled(nodes: readonly DaemonNode[]): Promise<void> {
  for (let i = 0; i < 400; i += 1) {
    const all = await Promise.all(nodes.map(status));
    if (all.every((s) => s.jobs.every((j) => j.inFlight.length === 0))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('daemons did not settle');
}

/** runTrainer's rankEnv for one rank per node: rank r runs on nodes[r] through its daemon. */
export function rankEnvOn(nodes: readonly DaemonNode[]) {
  return (rank: number): Record<string, string> => {
    const n = nodes[rank] as DaemonNode;
    return {
      CUBE_NODE: n.name,
      CUBE_CKPT_L1: n.l1,
      CUBE_CKPT_SOCKET: n.socket,
      LOCAL_RANK: '0',
      LOCAL_WORLD_SIZE: '1',
    };
  };
}

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { destination, pino } from 'pino';
import { NodeAgent, cpuPlugin, silentLog, type NodeAgentOptions } from '../../src/agent/index.ts';
import { pythonInterpreter } from '../../src/core/index.ts';
import type { FakeControlPlane } from './fake-control-plane.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** The project's interpreter (CUBE_PYTHON, else .venv/bin/python from scripts/setup.sh). */
export const python = pythonInterpreter();

/** A `cube agent` process, its output collected as it comes. */
export interface CliAgent {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stdout: string;
  stderr: string;
}

/** Starts `cube agent` as node-a of `cp` in `dirs`, with `flags` added (devices, role, ...). */
export function spawnCliAgent(
  cp: FakeControlPlane,
  dirs: { dataDir: string; l1: string },
  flags: readonly string[],
): CliAgent {
  const child = spawn(
    process.execPath,
    [
      join(repoRoot, 'bin/cube.js'),
      'agent',
      '--server',
      cp.url,
      '--token',
      cp.joinToken,
      '--name',
      'node-a',
      '--data-dir',
      dirs.dataDir,
      '--l1',
      dirs.l1,
      ...flags,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const agent: CliAgent = {
    child,
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
    stdout: '',
    stderr: '',
  };
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (agent.stdout += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (agent.stderr += c));
  return agent;
}

interface TestContext {
  after: (fn: () => void | Promise<void>) => void;
}

const cleanups = new WeakMap<TestContext, (() => void | Promise<void>)[]>();

/** Runs `fn` after the test, before everything deferred earlier (last in, first out). */
export function defer(t: TestContext, fn: () => void | Promise<void>): void {
  let stack = cleanups.get(t);
  if (stack === undefined) {
    const fns: (() => void | Promise<void>)[] = [];
    stack = fns;
    cleanups.set(t, fns);
    t.after(async () => {
      for (const f of fns.reverse()) await f();
    });
  }
  stack.push(fn);
}

/** A temp directory on disk and an L1 root on tmpfs, removed after the test. */
export function tempDirs(t: TestContext): { dataDir: string; l1: string; l3: string } {
  const dataDir = mkdtempSync(join(tmpdir(), 'cube-agent-'));
  const l1 = mkdtempSync(join('/dev/shm', 'cube-agent-l1-'));
  defer(t, () => {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(l1, { recursive: true, force: true });
  });
  return { dataDir, l1, l3: join(dataDir, 'shared-l3') };
}

/** Set CUBE_TEST_VERBOSE=1 to see the agent's log while debugging a test. */
export const testLog =
  process.env.CUBE_TEST_VERBOSE === '1' ? pino({ name: 'agent-test' }, destination(2)) : silentLog;

/** Starts an agent on `cp` with 2 CPU devices; it is stopped after the test. */
export async function startAgent(
  t: TestContext,
  cp: FakeControlPlane,
  dirs: { dataDir: string; l1: string },
  overrides: Partial<NodeAgentOptions> = {},
): Promise<NodeAgent> {
  const agent = new NodeAgent({
    server: cp.url,
    joinToken: cp.joinToken,
    name: 'node-a',
    labels: { server: 's0', superNode: 'sn0' },
    dataDir: dirs.dataDir,
    l1Root: dirs.l1,
    devices: cpuPlugin({ count: 2 }),
    probeIntervalMs: 200,
    killGraceMs: 1000,
    log: testLog,
    ...overrides,
  });
  defer(t, () => agent.stop());
  await agent.start({ signal: AbortSignal.timeout(15_000) });
  return agent;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A launch command for `ranks` local ranks of `command`, as the control plane would send it. */
export function launchCommand(
  jobId: string,
  command: string[],
  options: {
    ranks?: number;
    attempt?: number;
    masterPort?: number;
    env?: Record<string, string>;
    l3Path?: string;
  } = {},
): Record<string, unknown> {
  const ranks = options.ranks ?? 2;
  return {
    kind: 'launch',
    jobId,
    attempt: options.attempt ?? 0,
    ranks: Array.from({ length: ranks }, (_, r) => ({ rank: r, localRank: r })),
    worldSize: ranks,
    localWorldSize: ranks,
    masterAddr: '127.0.0.1',
    masterPort: options.masterPort ?? 29500,
    command,
    workingDir: repoRoot,
    env: options.env ?? {},
    checkpoint: {
      everySteps: 2,
      ...(options.l3Path === undefined ? {} : { l3Path: options.l3Path }),
      l3Every: 1,
      keep: { L1: 2, L3: 3 },
      replicaPeer: null,
      peers: [],
    },
  };
}

/** True while `pid` runs (a zombie nobody reaped yet counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

// A worker thread that plays many node agents at once: each joins over the real API, then
// heartbeats at 1 Hz (sleeping the interval after each reply, as the real agent does) with a
// realistic body (probes, eight devices, free space), over keep-alive HTTP. With `ranks`, each
// agent also reports the ranks the control plane launched on it (from the heartbeat replies'
// `launch` commands) as running, a step further each time, as a busy cluster's agents do. The
// latency of every heartbeat inside a measurement window is recorded.
import { Agent, request } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

interface Sim {
  name: string;
  nodeId: string;
  credential: string;
  /** Ranks running on the agent, reported in its heartbeats. */
  ranks: { jobId: string; attempt: number; rank: number }[];
  step: number;
}

export interface WorkerInput {
  readonly url: string;
  readonly joinToken: string;
  readonly names: readonly string[];
  readonly devicesPerNode: number;
  readonly intervalMs: number;
  /** Skip the join (the bare baseline server has no join route): ids are made up. */
  readonly fakeJoin: boolean;
  /**
   * Report ranks: those launched on the agent (`launch` commands), or, with `fakeJoin` (the
   * bare server launches nothing), `devicesPerNode` made-up ones, for the same body size.
   */
  readonly ranks?: boolean;
}

export type WorkerCommand = { kind: 'heartbeat' } | { kind: 'measure' } | { kind: 'stop' };
export type WorkerReply =
  | { kind: 'joined'; count: number; joinMs: number[] }
  | {
      kind: 'measured';
      latenciesMs: number[];
      errors: number;
      lagMs: number;
      /** Ranks the agents report now, all together. */
      ranks: number;
    }
  | { kind: 'stopped' };

const input = workerData as WorkerInput;
const target = new URL(input.url);
const agent = new Agent({ keepAlive: true, maxSockets: 512 });

function post(
  path: string,
  body: string,
  token?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const devices = Array.from({ length: input.devicesPerNode }, (_, index) => ({
  index,
  kind: 'cpu' as const,
  model: 'bench cpu',
  memoryBytes: 8 * 1024 ** 3,
  health: 'ok' as const,
}));

// Serialized once; only the time changes between heartbeats (the simulator's own cost counts
// against the machine both servers run on).
const heartbeatRest = JSON.stringify({
  health: {
    probes: [
      { name: 'devices', ok: true, message: `${devices.length} healthy` },
      { name: 'free-space-l1', ok: true, message: '30.1 GiB free at /dev/shm/cube-x' },
      { name: 'free-space-l3', ok: true, message: 'nothing to check' },
    ],
    devices,
    freeBytes: { l1: 32_000_000_000, l3: null },
  },
  ranks: [],
}).slice(1, -'"ranks":[]}'.length);

function heartbeatBody(sim: Sim): string {
  const ranks = sim.ranks.map((r) => ({
    ...r,
    state: 'running',
    progress: { step: sim.step, at: null },
  }));
  sim.step += 1;
  return `{"at":"${new Date().toISOString()}",${heartbeatRest}"ranks":${JSON.stringify(ranks)}}`;
}

/** Takes the launch and kill commands of a heartbeat reply into the agent's ranks. */
function takeCommands(sim: Sim, text: string): void {
  if (!text.includes('"kind"')) return;
  const { commands } = JSON.parse(text) as {
    commands: { kind: string; jobId: string; attempt: number; ranks?: { rank: number }[] }[];
  };
  for (const c of commands)
    if (c.kind === 'launch')
      for (const r of c.ranks ?? [])
        sim.ranks.push({ jobId: c.jobId, attempt: c.attempt, rank: r.rank });
    else if (c.kind === 'kill')
      sim.ranks = sim.ranks.filter((r) => !(r.jobId === c.jobId && r.attempt === c.attempt));
}

async function join(name: string, index: number): Promise<Sim> {
  if (input.fakeJoin)
    return {
      name,
      nodeId: `n-fake${index}`,
      credential: 'x',
      ranks:
        input.ranks === true
          ? devices.map((d) => ({ jobId: `j-fake${index >> 3}`, attempt: 0, rank: d.index }))
          : [],
      step: 0,
    };
  for (let tries = 0; ; tries += 1) {
    const r = await post(
      '/api/v1/agents/join',
      JSON.stringify({
        joinToken: input.joinToken,
        name,
        labels: { server: name, superNode: `sn${index % 8}` },
        devices,
        hostMemoryBytes: 64 * 1024 ** 3,
      }),
    ).catch((error: unknown) => ({ status: 0, text: String(error) }));
    if (r.status === 200) {
      const body = JSON.parse(r.text) as { nodeId: string; credential: string };
      return { name, nodeId: body.nodeId, credential: body.credential, ranks: [], step: 0 };
    }
    if (tries > 20) throw new Error(`join of ${name} failed: ${r.status} ${r.text}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

const sims: Sim[] = [];
const joinMs: number[] = [];
let running = false;
let measuring = false;
let latencies: number[] = [];
let errors = 0;
let maxLagMs = 0;

async function heartbeatLoop(sim: Sim): Promise<void> {
  // Spread the agents over the interval, as agents started at different times would be.
  await new Promise((r) => setTimeout(r, Math.random() * input.intervalMs));
  while (running) {
    const started = performance.now();
    try {
      const r = await post(
        `/api/v1/agents/${sim.nodeId}/heartbeat`,
        heartbeatBody(sim),
        sim.credential,
      );
      if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text.slice(0, 200)}`);
      if (input.ranks === true && !input.fakeJoin) takeCommands(sim, r.text);
      if (measuring) latencies.push(performance.now() - started);
    } catch {
      if (measuring) errors += 1;
    }
    await new Promise((r) => setTimeout(r, input.intervalMs));
  }
}

// How late this thread's timers fire: if the simulator itself falls behind, its latencies lie.
let lastTick = performance.now();
const lagTimer = setInterval(() => {
  const now = performance.now();
  if (measuring) maxLagMs = Math.max(maxLagMs, now - lastTick - 100);
  lastTick = now;
}, 100);

const port = parentPort;
if (port === null) throw new Error('agents-worker runs as a worker thread');
let next = 0;
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (next < input.names.length) {
      const i = next;
      next += 1;
      const t = performance.now();
      sims[i] = await join(input.names[i] ?? '', i);
      joinMs.push(performance.now() - t);
    }
  }),
);
port.postMessage({ kind: 'joined', count: sims.length, joinMs } satisfies WorkerReply);
port.on('message', (command: WorkerCommand) => {
  switch (command.kind) {
    case 'heartbeat':
      running = true;
      for (const sim of sims) void heartbeatLoop(sim);
      break;
    case 'measure':
      if (!measuring) {
        measuring = true;
        latencies = [];
        errors = 0;
        maxLagMs = 0;
        break;
      }
      measuring = false;
      port.postMessage({
        kind: 'measured',
        latenciesMs: latencies,
        errors,
        lagMs: maxLagMs,
        ranks: sims.reduce((n, sim) => n + sim.ranks.length, 0),
      } satisfies WorkerReply);
      break;
    case 'stop':
      running = false;
      clearInterval(lagTimer);
      agent.destroy();
      port.postMessage({ kind: 'stopped' } satisfies WorkerReply);
      break;
    default:
      command satisfies never;
  }
});

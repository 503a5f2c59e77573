import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { destination, pino } from 'pino';
import { z } from 'zod';
import { allowedCpus, CubeError, ensurePrivateDir, formatCpuList } from '../core/index.ts';
import { LocalBackend, type ExecutionBackend } from '../backends/index.ts';
import type { AgentLog } from './agent-log.ts';
import { controlUrl, isAuthFailure, isRetryable, postJson, type Reply } from './control-client.ts';
import { loadCredential, removeCredential, saveCredential } from './credential.ts';
import { CheckpointDaemonProcess } from './daemon-process.ts';
import type { PeerTlsFiles } from '../ckpt/daemon/index.ts';
import { raiseFence } from '../ckpt/index.ts';
import type { Device, DevicePlugin } from './devices/device-plugin.ts';
import { LogForwarder } from './log-forwarder.ts';
import { createAgentMetrics } from './metrics.ts';
import { MetricsServer, type MetricsListenOptions } from './metrics-server.ts';
import { checkSocketPath, startLocalSocket } from './local-socket.ts';
import { reapOrphans } from './orphans.ts';
import { Outbox } from './outbox.ts';
import { commandProbe } from './probes/command-probe.ts';
import { deviceProbeResult } from './probes/device-probe.ts';
import { freeBytes, freeSpaceProbe } from './probes/free-space.ts';
import type { HealthProbe } from './probes/health-probe.ts';
import {
  commandSchema,
  heartbeatResponseSchema,
  joinResponseSchema,
  type AgentCommand,
  type AgentEvent,
  type DeviceInfo,
  type FaultCommand,
  type HeartbeatRequest,
  type JoinRequest,
  type LaunchCommand,
  type LogChunk,
  type ProbeResult,
  type RankReport,
} from './protocol.ts';
import { RankSupervisor } from './rank-supervisor.ts';
import { backoffMs, sleep } from './sleep.ts';

export interface NodeAgentOptions {
  /** The control plane, e.g. `http://10.0.0.1:7070` (`/api/v1` is added). */
  readonly server: string;
  readonly joinToken: string;
  /** This node's name: its identity at the control plane, `CUBE_NODE` and the checkpoint daemon's node. */
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly role?: 'worker' | 'spare';
  /** Holds `credential.json`, `ranks.json`, `agent.sock`, `ckpt.sock`, `logs/`, `l2/` (and `l3/`, the default L3 root). */
  readonly dataDir: string;
  /** The L1 level root (tmpfs); default `/dev/shm/cube-<name>`, or `<dataDir>/l1` without /dev/shm. */
  readonly l1Root?: string;
  readonly devices: DevicePlugin;
  /** The checkpoint daemon's peer listener (default 127.0.0.1, any port). */
  readonly ckptListen?: { readonly host: string; readonly port: number };
  /**
   * The checkpoint daemon's niceness, 0..19 (default 10): it runs as a child process under
   * `nice` so its CPU work (L2 replication, L3 copies, fsyncs) yields to the training ranks.
   */
  readonly ckptNice?: number;
  /**
   * The node's housekeeping cores for checkpoint work: the daemon's threads and each rank's
   * checkpoint thread (`CUBE_CKPT_CPUS`) run there, and the ranks' other threads on the CPUs
   * left over, so checkpoint work and training never take each other's cores. Default: every
   * thread wherever the scheduler puts it.
   */
  readonly ckptCpus?: readonly number[];
  /**
   * TLS on the checkpoint peer port (`--ckpt-tls-cert`, `--ckpt-tls-key`, `--ckpt-ca`): the
   * daemon reads the files itself; the key never passes through the agent.
   */
  readonly ckptTls?: PeerTlsFiles;
  /** Heartbeat interval; default: what the control plane answers at join (else 1000 ms). */
  readonly heartbeatMs?: number;
  /** How often devices and probes are checked (default 5000 ms). */
  readonly probeIntervalMs?: number;
  /** A shell command whose failure (non-zero exit) is reported as the `command` probe failing. */
  readonly probeCommand?: string;
  readonly probeTimeoutMs?: number;
  /** The free-space probes fail below this many free bytes (default 64 MiB). */
  readonly minFreeBytes?: number;
  /** SIGTERM → SIGKILL grace of kill commands and of stopping the agent (default 5000 ms). */
  readonly killGraceMs?: number;
  /** Rank log rotation: size of one file (default 16 MiB) and rotated files kept (default 3). */
  readonly logMaxBytes?: number;
  readonly logKeepFiles?: number;
  /** Default `<dataDir>/agent.sock`. */
  readonly socketPath?: string;
  /** Where ranks run (default: local processes). */
  readonly backend?: ExecutionBackend;
  /** The environment ranks inherit (default: the agent's). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly log?: AgentLog;
  /** Timeout of one request to the control plane (default 10 s). */
  readonly requestTimeoutMs?: number;
  /** Serve `/metrics` here (`--metrics-listen`); default: no metrics listener. */
  readonly metrics?: MetricsListenOptions;
}

/** What the agent knows about itself, for `cube agent` output and tests. */
export interface NodeAgentSnapshot {
  readonly nodeId: string | null;
  readonly name: string;
  readonly socketPath: string;
  /** The checkpoint daemon's local API socket (the ranks' `CUBE_CKPT_SOCKET`). */
  readonly ckptSocketPath: string;
  /** The checkpoint daemon child's process id (null while none runs). */
  readonly ckptPid: number | null;
  readonly l1Root: string;
  readonly peer: { readonly host: string; readonly port: number } | null;
  readonly devices: readonly Device[];
  readonly probes: readonly ProbeResult[];
  readonly ranks: readonly RankReport[];
}

/** How an agent ended: stopped (SIGTERM, `stop()`), or killed by an injected `kill-node` fault. */
export type AgentEnd = 'stopped' | 'killed';

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

const anyReply = z.unknown();
/** Listen addresses that name no single address a peer could connect to. */
const wildcardHosts = new Set(['0.0.0.0', '::', '']);

/**
 * The CPUs the ranks keep when `ckptCpus` are set apart for checkpoint work: those this process
 * may use, less the housekeeping ones; undefined when none are set apart.
 */
function cpusLeftForRanks(ckptCpus: readonly number[] | undefined): number[] | undefined {
  if (ckptCpus === undefined) return undefined;
  const allowed = allowedCpus();
  const left = allowed.filter((cpu) => !ckptCpus.includes(cpu));
  if (left.length === 0)
    throw new CubeError(
      'INVALID_VALUE',
      `ckptCpus ${formatCpuList(ckptCpus)} leave no CPU for the ranks (this agent may use CPUs ${formatCpuList(allowed)})`,
      { where: { field: 'ckptCpus' }, hint: 'set fewer CPUs apart for checkpoint work' },
    );
  return left;
}

/**
 * The node agent: joins the control plane, heartbeats the node's devices, health and ranks,
 * carries out the commands in the replies (launch, kill, fault), pushes rank exits, progress,
 * checkpoint commits and probe failures as events and rank output as log chunks, and supervises
 * the node's checkpoint daemon, a child process at a lower CPU priority with its own Unix socket
 * (restarted if it dies). When the control plane is unreachable, ranks keep running and
 * everything is retried with backoff.
 */
/** How long a launch waits for its job's L3 fence to be raised before it starts anyway. */
const fenceTimeoutMs = 10_000;

export class NodeAgent {
  readonly #options: NodeAgentOptions;
  readonly #log: AgentLog;
  readonly #url: string;
  readonly #l1Root: string;
  readonly #socketPath: string;
  readonly #ckptSocketPath: string;
  readonly #credentialPath: string;
  readonly #recordsPath: string;
  readonly #killGraceMs: number;
  readonly #backend: ExecutionBackend;
  readonly #daemon: CheckpointDaemonProcess;
  readonly #supervisor: RankSupervisor;
  readonly #events: Outbox<AgentEvent>;
  readonly #logs: Outbox<LogChunk>;
  readonly #forwarder: LogForwarder;
  readonly #probes: HealthProbe[];
  readonly #stop = new AbortController();
  readonly #loops: Promise<void>[] = [];
  readonly #failing = new Set<string>();
  readonly #done: Promise<AgentEnd>;
  #resolveDone: (end: AgentEnd) => void = () => undefined;
  #state: State = 'new';
  #socket: FastifyInstance | null = null;
  #metrics: MetricsServer | null = null;
  #nodeId: string | null = null;
  #credential: string | null = null;
  #heartbeatMs: number;
  #devices: Device[] = [];
  #probeResults: ProbeResult[] = [];
  #injected: ProbeResult | null = null;
  #freeBytes: { l1: number | null; l3: number | null } = { l1: null, l3: null };
  #l3Path: string | null = null;
  /**
   * Launches and kills start in the order the control plane sent them: a launch first raises
   * its job's L3 fence, and a kill that came after it must not overtake it.
   */
  #commandOrder: Promise<void> = Promise.resolve();
  #rejoining: Promise<void> | null = null;

  constructor(options: NodeAgentOptions) {
    this.#options = options;
    this.#log = options.log ?? pino({ name: 'cube-agent' }, destination(2));
    this.#url = controlUrl(options.server);
    this.#l1Root = options.l1Root ?? defaultL1Root(options.name, options.dataDir);
    this.#socketPath = options.socketPath ?? join(options.dataDir, 'agent.sock');
    this.#ckptSocketPath = join(options.dataDir, 'ckpt.sock');
    this.#credentialPath = join(options.dataDir, 'credential.json');
    this.#recordsPath = join(options.dataDir, 'ranks.json');
    this.#killGraceMs = options.killGraceMs ?? 5000;
    this.#heartbeatMs = options.heartbeatMs ?? 1000;
    this.#backend = options.backend ?? new LocalBackend();
    const rankCpus = cpusLeftForRanks(options.ckptCpus);
    this.#done = new Promise((resolve) => (this.#resolveDone = resolve));
    this.#daemon = new CheckpointDaemonProcess({
      node: options.name,
      l1Root: this.#l1Root,
      l2Root: join(options.dataDir, 'l2'),
      socketPath: this.#ckptSocketPath,
      listen: options.ckptListen ?? { host: '127.0.0.1', port: 0 },
      nice: options.ckptNice ?? 10,
      ...(options.ckptCpus === undefined ? {} : { cpus: options.ckptCpus }),
      ...(options.ckptTls === undefined ? {} : { tls: options.ckptTls }),
      stopGraceMs: this.#killGraceMs,
      log: this.#log,
      onCommit: ({ job, level, step }) =>
        this.#events.push({ kind: 'checkpoint-committed', jobId: job, level, step }),
      // A restarted daemon that could not have its old port back: join again to announce it.
      onAddressChange: (peer) => {
        if (this.#state !== 'running') return;
        this.#log.warn({ peer }, 'the checkpoint daemon listens on a new port; re-joining');
        void this.#rejoin();
      },
    });
    const backoff = { initialMs: 200, maxMs: Math.max(5000, this.#heartbeatMs) };
    this.#events = new Outbox<AgentEvent>({
      send: (batch, signal) => this.#post('events', { events: batch }, signal),
      maxBatch: 100,
      maxWeight: 100_000,
      backoff,
      onDrop: (items, why) => this.#log.warn({ count: items.length, why }, 'events dropped'),
      onAuthFailure: () => void this.#rejoin(),
    });
    this.#logs = new Outbox<LogChunk>({
      send: ([chunk], signal) => this.#post('logs', chunk, signal),
      maxBatch: 1,
      maxWeight: 8 * 1024 * 1024,
      weight: (chunk) => chunk.text.length,
      backoff,
      onDrop: (items, why) =>
        this.#log.warn(
          { chunks: items.length, chars: items.reduce((n, c) => n + c.text.length, 0), why },
          'rank output not forwarded',
        ),
      onAuthFailure: () => void this.#rejoin(),
    });
    this.#forwarder = new LogForwarder((chunk) => this.#logs.push(chunk));
    this.#supervisor = new RankSupervisor({
      backend: this.#backend,
      env: {
        node: options.name,
        l1Root: this.#l1Root,
        defaultL3Root: join(options.dataDir, 'l3'),
        socketPath: this.#socketPath,
        ckptSocketPath: this.#ckptSocketPath,
        ...(options.ckptCpus === undefined ? {} : { ckptCpus: options.ckptCpus }),
        baseEnv: options.env ?? process.env,
      },
      logsDir: join(options.dataDir, 'logs'),
      ...(rankCpus === undefined ? {} : { cpus: rankCpus }),
      logMaxBytes: options.logMaxBytes ?? 16 * 1024 * 1024,
      logKeepFiles: options.logKeepFiles ?? 3,
      recordsPath: this.#recordsPath,
      onEvent: (event) => {
        // The rank's last output goes out before its exit.
        if (event.kind === 'rank-exited') this.#forwarder.flushRank(event);
        this.#events.push(event);
      },
      onOutput: (rank, stream, text) => this.#forwarder.append(rank, stream, text),
      log: this.#log,
    });
    const minFreeBytes = options.minFreeBytes ?? 64 * 1024 * 1024;
    this.#probes = [
      freeSpaceProbe('free-space-l1', () => this.#l1Root, { minFreeBytes }),
      freeSpaceProbe('free-space-l3', () => this.#l3Path, { minFreeBytes }),
      ...(options.probeCommand === undefined
        ? []
        : [
            commandProbe(options.probeCommand, {
              ...(options.probeTimeoutMs === undefined
                ? {}
                : { timeoutMs: options.probeTimeoutMs }),
            }),
          ]),
    ];
  }

  /** The id the control plane gave this node (null before the first join). */
  get nodeId(): string | null {
    return this.#nodeId;
  }

  /** The Unix socket ranks report progress and restores to the agent on (`CUBE_AGENT_SOCKET`). */
  get socketPath(): string {
    return this.#socketPath;
  }

  /** The checkpoint daemon's local API socket (`CUBE_CKPT_SOCKET`). */
  get ckptSocketPath(): string {
    return this.#ckptSocketPath;
  }

  /** Where `/metrics` listens (null without `metrics`, or before `start`). */
  get metricsAddress(): { readonly host: string; readonly port: number } | null {
    return this.#metrics?.address ?? null;
  }

  /** Resolves when the agent has stopped, with why. */
  get done(): Promise<AgentEnd> {
    return this.#done;
  }

  snapshot(): NodeAgentSnapshot {
    const peer = this.#daemon.address;
    return {
      nodeId: this.#nodeId,
      name: this.#options.name,
      socketPath: this.#socketPath,
      ckptSocketPath: this.#ckptSocketPath,
      ckptPid: this.#daemon.pid,
      l1Root: this.#l1Root,
      peer: peer === null ? null : { host: peer.host, port: peer.port },
      devices: this.#devices,
      probes: this.#probeResults,
      ranks: this.#supervisor.reports(),
    };
  }

  /**
   * Starts the checkpoint daemon and the socket, checks the node once, reaps ranks a previous
   * agent left behind, and joins (re-joining with the stored credential when there is one),
   * retrying while the control plane is unreachable; then heartbeats until `stop`.
   */
  async start(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state !== 'new') throw new CubeError('INTERNAL', 'a NodeAgent starts once');
    this.#state = 'starting';
    const signal =
      options.signal === undefined
        ? this.#stop.signal
        : AbortSignal.any([options.signal, this.#stop.signal]);
    try {
      // Private before anything is written: checkpoints, the credential and sockets live here.
      ensurePrivateDir(this.#options.dataDir, { what: 'agent data directory' });
      ensurePrivateDir(this.#l1Root, { what: 'L1 directory', field: '--l1' });
      ensurePrivateDir(join(this.#options.dataDir, 'l2'), { what: 'L2 directory' });
      for (const orphan of await reapOrphans(this.#recordsPath)) {
        this.#log.warn(orphan, 'killed a rank left running by an earlier agent');
        this.#events.push({
          kind: 'rank-exited',
          jobId: orphan.jobId,
          attempt: orphan.attempt,
          rank: orphan.rank,
          exitCode: null,
          signal: 'SIGKILL',
        });
      }
      checkSocketPath(this.#socketPath, 'agent');
      checkSocketPath(this.#ckptSocketPath, 'checkpoint daemon');
      await this.#daemon.start();
      this.#socket = await startLocalSocket(this.#socketPath, {
        progress: (report) => this.#supervisor.progress(report),
        warm: (token) => this.#supervisor.warmRequest(token),
        restored: (report) => this.#supervisor.restored(report),
      });
      if (this.#options.metrics !== undefined)
        this.#metrics = await MetricsServer.start(
          createAgentMetrics({
            ckptSocketPath: this.#ckptSocketPath,
            levelRoots: () => ({
              L1: this.#l1Root,
              L2: join(this.#options.dataDir, 'l2'),
              L3: this.#l3Path ?? join(this.#options.dataDir, 'l3'),
            }),
            rankStates: () => this.#supervisor.reports().map((r) => r.state),
            outboxItems: () => ({ events: this.#events.size, logs: this.#logs.size }),
          }),
          this.#options.metrics,
        );
      await this.#check(signal);
      await this.#join(signal);
      this.#events.resume();
      this.#logs.resume();
      this.#state = 'running';
      this.#loops.push(this.#heartbeatLoop(), this.#probeLoop());
    } catch (error) {
      await this.#teardown();
      this.#state = 'stopped';
      this.#resolveDone('stopped');
      throw error;
    }
  }

  /**
   * Stops every rank (SIGTERM, SIGKILL after the grace) and reports their exits, delivers what
   * is queued (a few seconds at most), then closes the socket and the checkpoint daemon.
   */
  async stop(): Promise<void> {
    if (this.#state === 'new') {
      this.#state = 'stopped';
      this.#resolveDone('stopped');
      return;
    }
    if (this.#state === 'stopping' || this.#state === 'stopped' || this.#state === 'starting') {
      this.#stop.abort();
      await this.#done;
      return;
    }
    this.#state = 'stopping';
    await this.#supervisor.killAll(this.#killGraceMs);
    this.#supervisor.close();
    this.#forwarder.flushAll();
    this.#stop.abort();
    await Promise.allSettled(this.#loops);
    await Promise.all([this.#events.flush(3000), this.#logs.flush(3000)]);
    await this.#teardown();
    this.#state = 'stopped';
    this.#resolveDone('stopped');
  }

  async #teardown(): Promise<void> {
    this.#stop.abort();
    this.#events.close();
    this.#logs.close();
    this.#supervisor.close();
    await this.#socket?.close().catch(() => undefined);
    this.#socket = null;
    await this.#metrics?.close().catch(() => undefined);
    this.#metrics = null;
    await this.#daemon.stop().catch(() => undefined);
    await this.#backend.close().catch(() => undefined);
    await rm(this.#socketPath, { force: true });
    await rm(this.#ckptSocketPath, { force: true });
  }

  /** A simulated node loss: every rank SIGKILLed, nothing reported, the agent gone. */
  async #crash(): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'stopping';
    this.#log.warn(
      { node: this.#options.name },
      'kill-node fault: killing every rank and stopping',
    );
    this.#stop.abort();
    this.#events.close();
    this.#logs.close();
    // The daemon is lost with the node, unflushed work and all.
    await Promise.all([this.#supervisor.crash(), this.#daemon.kill()]);
    await Promise.allSettled(this.#loops);
    await this.#teardown();
    this.#state = 'stopped';
    this.#resolveDone('killed');
  }

  async #join(signal: AbortSignal): Promise<void> {
    const stored = await loadCredential(this.#credentialPath);
    let known =
      stored !== null && stored.server === this.#url && stored.name === this.#options.name
        ? stored
        : null;
    for (let failures = 0; ;) {
      if (signal.aborted)
        throw new CubeError('INFEASIBLE', `the agent stopped before joining ${this.#url}`);
      // Read at each try: a restarted daemon may listen on another port.
      const peer = this.#daemon.address;
      if (peer === null) throw new CubeError('INTERNAL', 'joining before the daemon started');
      const body: JoinRequest = {
        joinToken: this.#options.joinToken,
        name: this.#options.name,
        labels: { ...this.#options.labels },
        devices: this.#devices.map(deviceInfo),
        hostMemoryBytes: totalmem(),
        ...(this.#options.role === undefined ? {} : { role: this.#options.role }),
        ckpt: { peerPort: peer.port },
        ...(wildcardHosts.has(peer.host) ? {} : { host: peer.host }),
        ...(known === null ? {} : { credential: known.credential }),
      };
      const reply = await postJson(`${this.#url}/agents/join`, body, joinResponseSchema, {
        credential: known?.credential ?? null,
        signal,
        timeoutMs: this.#options.requestTimeoutMs ?? 10_000,
      });
      if (reply.ok) {
        const { nodeId, credential, heartbeatIntervalMs } = reply.value;
        if (known !== null && known.nodeId !== nodeId)
          this.#log.warn(
            { was: known.nodeId, now: nodeId },
            'the control plane gave this node a new id',
          );
        this.#nodeId = nodeId;
        this.#credential = credential;
        if (this.#options.heartbeatMs === undefined && heartbeatIntervalMs !== undefined)
          this.#heartbeatMs = heartbeatIntervalMs;
        await saveCredential(this.#credentialPath, {
          server: this.#url,
          name: this.#options.name,
          nodeId,
          credential,
        });
        this.#log.info(
          { nodeId, server: this.#url, rejoined: known?.nodeId === nodeId },
          'joined the control plane',
        );
        return;
      }
      if (known !== null && isAuthFailure(reply)) {
        this.#log.warn(
          { nodeId: known.nodeId, why: reply.message },
          'stored credential refused; joining afresh',
        );
        known = null;
        await removeCredential(this.#credentialPath);
        continue;
      }
      // 422: the name is still held by a live node (a lost credential); it frees up once that
      // node misses its heartbeats.
      const held = !reply.ok && reply.status === 422;
      if (!held && (!isRetryable(reply) || isAuthFailure(reply)))
        throw new CubeError(
          'INFEASIBLE',
          `the control plane refused to let ${this.#options.name} join: ${reply.message}`,
          {
            where: { node: this.#options.name },
            hint: 'check --token (the cluster join token) and that agent and control plane speak protocol v1',
          },
        );
      failures += 1;
      if (failures === 1)
        this.#log.warn(
          { why: reply.message },
          held
            ? 'the name is held by a live node; retrying the join'
            : 'control plane unreachable; retrying the join',
        );
      await sleep(
        backoffMs(failures, { initialMs: 200, maxMs: Math.max(5000, this.#heartbeatMs) }),
        signal,
      );
    }
  }

  /** Joins again (one at a time) after the control plane stopped knowing this node. */
  #rejoin(): Promise<void> {
    this.#rejoining ??= this.#join(this.#stop.signal)
      .then(() => {
        this.#events.resume();
        this.#logs.resume();
      })
      .catch((error: unknown) => this.#log.error({ err: String(error) }, 're-join failed'))
      .finally(() => (this.#rejoining = null));
    return this.#rejoining;
  }

  async #post(
    route: 'events' | 'logs',
    body: unknown,
    signal: AbortSignal,
  ): Promise<Reply<unknown>> {
    if (this.#rejoining !== null) await this.#rejoining;
    if (this.#nodeId === null) return { ok: false, status: 0, message: 'not joined yet' };
    return postJson(
      `${this.#url}/agents/${encodeURIComponent(this.#nodeId)}/${route}`,
      body,
      anyReply,
      {
        credential: this.#credential,
        signal,
        timeoutMs: this.#options.requestTimeoutMs ?? 10_000,
      },
    );
  }

  async #heartbeatLoop(): Promise<void> {
    const signal = this.#stop.signal;
    let failures = 0;
    while (!signal.aborted) {
      if (this.#rejoining !== null) await this.#rejoining;
      const nodeId = this.#nodeId as string;
      const reply = await postJson(
        `${this.#url}/agents/${encodeURIComponent(nodeId)}/heartbeat`,
        this.#heartbeat(),
        heartbeatResponseSchema,
        {
          credential: this.#credential,
          signal,
          timeoutMs: this.#options.requestTimeoutMs ?? 10_000,
        },
      );
      if (signal.aborted) break;
      if (reply.ok) {
        if (failures > 0) {
          this.#log.info({ failures }, 'control plane reachable again');
          this.#events.resume();
          this.#logs.resume();
        }
        failures = 0;
        this.#carryOut(reply.value.commands);
      } else if (isAuthFailure(reply)) {
        this.#log.warn(
          { nodeId, why: reply.message },
          'the control plane does not know this node; re-joining',
        );
        await this.#rejoin();
        continue;
      } else {
        failures += 1;
        if (failures === 1)
          this.#log.warn(
            { why: reply.message },
            'heartbeat failed; ranks keep running, retrying with backoff',
          );
      }
      const delayMs = reply.ok
        ? this.#heartbeatMs
        : // Capped near the heartbeat interval, not at 5 s: a restarted control plane counts
          // the heartbeat timeout from its start, and a retry that sleeps past it would get
          // every node declared down (and its job restarted) for an outage of a few seconds.
          backoffMs(failures, {
            initialMs: this.#heartbeatMs,
            maxMs: Math.max(1000, 2 * this.#heartbeatMs),
          });
      await sleep(delayMs, signal);
    }
  }

  #heartbeat(): HeartbeatRequest {
    return {
      at: new Date().toISOString(),
      health: {
        probes: this.#probeResults,
        devices: this.#devices.map(deviceInfo),
        freeBytes: this.#freeBytes,
      },
      ranks: this.#supervisor.reports(),
    };
  }

  #carryOut(commands: readonly unknown[]): void {
    for (const raw of commands) {
      const parsed = commandSchema.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        this.#log.warn(
          {
            // Only the kind: a launch command carries the job's peer keys.
            kind:
              typeof raw === 'object' && raw !== null && 'kind' in raw
                ? String(raw.kind).slice(0, 40)
                : typeof raw,
            at: issue?.path.join('.'),
            why: issue?.message,
          },
          'skipping a command this agent does not understand',
        );
        continue;
      }
      const command: AgentCommand = parsed.data;
      const failed = (error: unknown): void =>
        this.#log.error({ kind: command.kind, err: String(error) }, 'command failed');
      switch (command.kind) {
        case 'launch':
          if (this.#state !== 'running') break;
          // When the launch reached this node: bench/recovery splits a relaunch's seconds by it.
          this.#log.info(
            { jobId: command.jobId, attempt: command.attempt },
            'launch command received',
          );
          this.#configureCheckpoints(command);
          this.#commandOrder = this.#commandOrder.then(async () => {
            await this.#raiseFence(command);
            if (this.#state !== 'running') return;
            void this.#supervisor.launch(command, this.#killGraceMs).catch(failed);
          });
          break;
        case 'kill':
          this.#commandOrder = this.#commandOrder.then(() => {
            void this.#supervisor
              .kill(command.jobId, command.attempt, this.#killGraceMs)
              .catch(failed);
          });
          break;
        case 'fault':
          void this.#fault(command).catch(failed);
          break;
        default:
          command satisfies never;
      }
    }
  }

  /**
   * Raises the job's L3 fence to this attempt before its ranks start (docs/checkpoint-format.md,
   * "Fencing"): from then on, ranks of older attempts (on a node cut off from the control plane)
   * cannot commit at L3. A node that cannot reach L3 launches anyway: its ranks cannot commit
   * there either, and every node of the attempt raises the same fence.
   */
  async #raiseFence(command: LaunchCommand): Promise<void> {
    const l3Path = command.checkpoint.l3Path ?? join(this.#options.dataDir, 'l3');
    const giveUp = new AbortController();
    // A hung shared filesystem must not hold up this launch, nor the commands queued behind it.
    const timedOut = sleep(fenceTimeoutMs, giveUp.signal).then(() => 'timed out' as const);
    try {
      const raised = await Promise.race([
        raiseFence(l3Path, command.jobId, command.attempt, { signal: giveUp.signal }),
        timedOut,
      ]);
      if (raised === 'timed out')
        throw new Error(`no answer from ${l3Path} within ${fenceTimeoutMs / 1000} s`);
    } catch (error) {
      this.#log.warn(
        { jobId: command.jobId, attempt: command.attempt, err: String(error) },
        'could not raise the L3 fence; launching anyway',
      );
    } finally {
      giveUp.abort();
    }
  }

  #configureCheckpoints(command: LaunchCommand): void {
    const l3Path = command.checkpoint.l3Path ?? join(this.#options.dataDir, 'l3');
    this.#l3Path = l3Path;
    this.#daemon.configure({
      jobId: command.jobId,
      l3Root: l3Path,
      replicaPeer: command.checkpoint.replicaPeer,
      peers: command.checkpoint.peers,
      ...(command.checkpoint.peerAccess === undefined
        ? {}
        : { peerAccess: command.checkpoint.peerAccess }),
    });
  }

  async #fault(command: FaultCommand): Promise<void> {
    switch (command.fault) {
      case 'kill-rank': {
        const killed = await this.#supervisor.killOne(command.jobId, command.rank);
        this.#log.warn({ killed }, 'kill-rank fault carried out');
        break;
      }
      case 'fail-probe':
        this.#injected = {
          name: 'injected',
          ok: false,
          message: command.message ?? 'failure injected',
        };
        this.#record([...this.#probeResults.filter((p) => p.name !== 'injected'), this.#injected]);
        break;
      case 'kill-node':
        await this.#crash();
        break;
      default:
        command.fault satisfies never;
    }
  }

  async #probeLoop(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      await sleep(this.#options.probeIntervalMs ?? 5000, signal);
      if (signal.aborted) break;
      await this.#check(signal);
    }
  }

  /** Discovers the devices and runs every probe; a probe that starts failing is reported at once. */
  async #check(signal: AbortSignal): Promise<void> {
    const timeout = AbortSignal.any([signal, AbortSignal.timeout(60_000)]);
    let discoveryError: string | null = null;
    try {
      this.#devices = await this.#options.devices.discover({ signal: timeout });
    } catch (error) {
      discoveryError = error instanceof Error ? error.message : String(error);
      // What cannot be seen cannot be trusted.
      this.#devices = this.#devices.map((d) => ({
        ...d,
        health: 'failed',
        problem: discoveryError ?? '',
      }));
    }
    const results: ProbeResult[] = [deviceProbeResult(this.#devices, discoveryError)];
    for (const probe of this.#probes)
      results.push(
        await probe.run({ signal: timeout }).catch((error: unknown) => ({
          name: probe.name,
          ok: false,
          message: error instanceof Error ? error.message : String(error),
        })),
      );
    if (this.#injected !== null) results.push(this.#injected);
    this.#freeBytes = {
      l1: await freeBytes(this.#l1Root),
      l3: this.#l3Path === null ? null : await freeBytes(this.#l3Path),
    };
    this.#record(results);
  }

  #record(results: ProbeResult[]): void {
    this.#probeResults = results;
    for (const result of results) {
      if (result.ok) {
        if (this.#failing.delete(result.name))
          this.#log.info({ probe: result.name }, 'probe passes again');
        continue;
      }
      if (this.#failing.has(result.name)) continue;
      this.#failing.add(result.name);
      this.#log.warn({ probe: result.name, message: result.message }, 'probe failed');
      this.#events.push({ kind: 'probe-failed', name: result.name, message: result.message });
    }
  }
}

function deviceInfo(device: Device): DeviceInfo {
  return {
    index: device.index,
    kind: device.kind,
    model: device.model,
    memoryBytes: device.memoryBytes,
    health: device.health,
  };
}

/** `/dev/shm/cube-<name>` (node memory) when there is a /dev/shm, else `<dataDir>/l1`. */
export function defaultL1Root(name: string, dataDir: string): string {
  return existsSync('/dev/shm') ? join('/dev/shm', `cube-${name}`) : join(dataDir, 'l1');
}

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CubeError, formatCpuList } from '../core/index.ts';
import type { Level } from '../ckpt/index.ts';
import type { PeerTlsFiles, Registration } from '../ckpt/daemon/index.ts';
import type { AgentLog } from './agent-log.ts';
import {
  fromDaemonSchema,
  ipcIssue,
  type DaemonConfigure,
  type FromDaemon,
  type ToDaemon,
} from './daemon-ipc.ts';
import { backoffMs, sleep } from './sleep.ts';

const cubeBin = fileURLToPath(new URL('../../bin/cube.js', import.meta.url));
/**
 * The child runs the CLI the way this process does: compiled when this module is dist/'s
 * JavaScript, the sources through tsx when it is src/'s TypeScript (bin/cube.js, CUBE_CLI_FROM).
 */
const cubeFrom = import.meta.url.endsWith('.ts') ? 'src' : 'dist';
/** Lines of the daemon's stderr kept to explain why it failed. */
const tailLines = 20;
/** A daemon that ran at least this long before dying restarts without a backoff penalty. */
const stableMs = 30_000;

type Address = { readonly host: string; readonly port: number };

export interface CheckpointDaemonProcessOptions {
  readonly node: string;
  readonly l1Root: string;
  readonly l2Root: string;
  /** The daemon's local API socket (the ranks' `CUBE_CKPT_SOCKET`). */
  readonly socketPath: string;
  /** The peer listener; port 0 picks one (a restart first tries the port the last daemon had). */
  readonly listen: Address;
  /**
   * The daemon's niceness, 0..19 (never below the agent's own): the daemon starts at the
   * agent's priority and lowers every one of its threads to this once it listens (`--nice`).
   */
  readonly nice: number;
  /** CPUs every thread of the daemon is kept on (`--cpus`), from before its start-up. */
  readonly cpus?: readonly number[];
  /** TLS files of the peer port (`--ckpt-tls-cert`, `--ckpt-tls-key`, `--ckpt-ca`). */
  readonly tls?: PeerTlsFiles;
  readonly log: AgentLog;
  readonly onCommit: (commit: { job: string; level: Level; step: number }) => void;
  /** A restarted daemon listens on another address than its predecessor (to be re-announced). */
  readonly onAddressChange?: (address: Address) => void;
  /** How long a start may take to report ready (default 60 s: a loaded node starts slowly). */
  readonly readyTimeoutMs?: number;
  /** SIGTERM → SIGKILL grace of `stop` (default 5000 ms). */
  readonly stopGraceMs?: number;
  /** Restart backoff after an unexpected exit (default 200 ms doubling to 5 s). */
  readonly restartBackoff?: { readonly initialMs: number; readonly maxMs: number };
}

type State = 'new' | 'running' | 'stopping' | 'stopped';

/**
 * The node's checkpoint daemon as a supervised child process (`cube ckpt daemon --ipc`), run at
 * a lower CPU priority than the agent and the ranks: Linux niceness is per thread and inherited
 * when a thread is created, so the daemon, once started, sets every thread it has (V8's,
 * libuv's file-I/O pool) to that niceness, and threads it creates later inherit it, while the
 * agent's heartbeats keep theirs. It does not start under `nice`: its start-up is CPU work the
 * agent waits for, and on a busy node a niced start-up took from 18 s to over a minute
 * (docs/architecture.md, "agent/ and its checkpoint daemon").
 * Configuration arrives over the IPC channel; commits come back over it. A daemon that exits
 * while the agent runs is restarted with backoff and given again every job's configuration and
 * every rank registration its predecessor had. The daemon exits by itself when the channel
 * closes, so a SIGKILLed agent leaves none behind.
 */
export class CheckpointDaemonProcess {
  readonly #options: CheckpointDaemonProcessOptions;
  readonly #stop = new AbortController();
  /** The last configuration of each job, re-sent after a restart (oldest first). */
  readonly #configs = new Map<string, DaemonConfigure>();
  /** The registrations ranks made, by job and rank, replayed after a restart. */
  readonly #registrations = new Map<string, Map<number, Registration>>();
  #state: State = 'new';
  #child: ChildProcess | null = null;
  #address: Address | null = null;
  #stderrTail: string[] = [];
  #restarting: Promise<void> | null = null;
  #restarts = 0;

  constructor(options: CheckpointDaemonProcessOptions) {
    if (!Number.isInteger(options.nice) || options.nice < 0 || options.nice > 19)
      throw new CubeError(
        'INVALID_VALUE',
        `ckptNice must be an integer 0..19, got ${options.nice}`,
        {
          where: { field: 'ckptNice' },
        },
      );
    this.#options = options;
  }

  /** The peer listener's address, or null before the first start. */
  get address(): Address | null {
    return this.#address;
  }

  /** The running daemon's process id (null while none runs). */
  get pid(): number | null {
    const child = this.#child;
    return child === null || !running(child) ? null : (child.pid ?? null);
  }

  /** How many times the daemon was restarted after an unexpected exit. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Starts the daemon and resolves once it listens; fails with its stderr when it cannot. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new CubeError('INTERNAL', 'a daemon process starts once');
    this.#state = 'running';
    try {
      await this.#spawn(this.#options.listen);
    } catch (error) {
      this.#state = 'stopped';
      throw error;
    }
  }

  /** Applies a job's checkpoint settings (from its launch command) now and after every restart. */
  configure(config: Omit<DaemonConfigure, 'kind'>): void {
    const message: DaemonConfigure = { kind: 'configure', ...config };
    // Re-sent in the order last configured: the newest replica peer wins, as it does now.
    this.#configs.delete(config.jobId);
    this.#configs.set(config.jobId, message);
    this.#send(message);
  }

  /** SIGTERM, SIGKILL after the grace; no restart follows. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'new') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    this.#stop.abort();
    const child = this.#child;
    if (child !== null && running(child)) {
      const timer = setTimeout(() => child.kill('SIGKILL'), this.#options.stopGraceMs ?? 5000);
      child.kill('SIGTERM');
      await exited(child);
      clearTimeout(timer);
    }
    await this.#restarting;
    this.#state = 'stopped';
  }

  /** SIGKILLs the daemon (a simulated node loss); no restart follows. */
  async kill(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'new') return;
    this.#state = 'stopping';
    this.#stop.abort();
    const child = this.#child;
    if (child !== null && running(child)) {
      child.kill('SIGKILL');
      await exited(child);
    }
    await this.#restarting;
    this.#state = 'stopped';
  }

  #send(message: ToDaemon): void {
    const child = this.#child;
    if (child === null || !child.connected) return; // sent after the restart instead
    child.send(message, (error) => {
      if (error !== null)
        this.#options.log.warn(
          { daemon: child.pid, kind: message.kind, err: error.message },
          'message to the checkpoint daemon not delivered; it is re-sent after a restart',
        );
    });
  }

  /** Spawns one daemon listening at `listen` and waits for its ready message. */
  async #spawn(listen: Address): Promise<void> {
    const o = this.#options;
    const args = [
      cubeBin,
      'ckpt',
      'daemon',
      '--node',
      o.node,
      '--l1',
      o.l1Root,
      '--l2',
      o.l2Root,
      '--socket',
      o.socketPath,
      '--listen',
      `${listen.host}:${listen.port}`,
      '--ipc',
      ...(o.nice === 0 ? [] : ['--nice', String(o.nice)]),
      ...(o.cpus === undefined ? [] : ['--cpus', formatCpuList(o.cpus)]),
      ...(o.tls === undefined
        ? []
        : [
            '--ckpt-tls-cert',
            o.tls.certFile,
            '--ckpt-tls-key',
            o.tls.keyFile,
            '--ckpt-ca',
            o.tls.caFile,
          ]),
    ];
    this.#stderrTail = [];
    // Its own process group: a Ctrl-C at the agent's terminal reaches the agent, which stops the
    // daemon after its ranks, not the daemon first (which would look like a crash to restart).
    const child = spawn(process.execPath, args, {
      env: { ...process.env, CUBE_CLI_FROM: cubeFrom },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    });
    this.#child = child;
    const pid = child.pid;
    if (child.stdout !== null)
      createInterface({ input: child.stdout }).on('line', (line) =>
        this.#logLine(pid, 'stdout', line),
      );
    if (child.stderr !== null)
      createInterface({ input: child.stderr }).on('line', (line) => {
        this.#stderrTail.push(line.slice(0, 500));
        if (this.#stderrTail.length > tailLines) this.#stderrTail.shift();
        this.#logLine(pid, 'stderr', line);
      });
    const timeoutMs = o.readyTimeoutMs ?? 60_000;
    const address = await new Promise<Address>((resolve, reject) => {
      const fail = (why: string): void => {
        cleanup();
        const tail = this.#stderrTail.join('\n').trim();
        reject(
          new CubeError(
            'INFEASIBLE',
            `the checkpoint daemon of ${o.node} ${why}${tail === '' ? '' : `; its stderr ends:\n${tail}`}`,
            {
              where: { node: o.node },
              hint: 'see the agent log (field daemon) for the whole daemon output',
            },
          ),
        );
      };
      const onMessage = (raw: unknown): void => {
        const parsed = fromDaemonSchema.safeParse(raw);
        if (parsed.success && parsed.data.kind === 'ready') {
          cleanup();
          resolve(parsed.data.peer);
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
        // Let the last stderr lines arrive before quoting them.
        void sleep(100).then(() =>
          fail(`exited before it was ready (${signal ?? `exit code ${code ?? '?'}`})`),
        );
      const onError = (error: Error): void => fail(`could not be started: ${error.message}`);
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        fail(`did not report ready within ${timeoutMs} ms`);
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        child.off('error', onError);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.once('error', onError);
    });
    const started = Date.now();
    const previous = this.#address;
    this.#address = address;
    child.on('message', (raw) => this.#receive(pid, raw));
    child.once('exit', (code, signal) => this.#exited(child, code, signal, Date.now() - started));
    if (this.#state !== 'running') {
      child.kill('SIGKILL');
      return;
    }
    this.#options.log.info(
      { daemon: pid, peer: address, socket: o.socketPath, nice: o.nice },
      'checkpoint daemon started',
    );
    for (const config of this.#configs.values()) this.#send(config);
    for (const [jobId, ranks] of this.#registrations)
      for (const [rank, registration] of ranks)
        this.#send({ kind: 'register', jobId, rank, registration });
    if (previous !== null && (previous.host !== address.host || previous.port !== address.port))
      o.onAddressChange?.(address);
  }

  #receive(pid: number | undefined, raw: unknown): void {
    const parsed = fromDaemonSchema.safeParse(raw);
    if (!parsed.success) {
      this.#options.log.warn(
        { daemon: pid, why: ipcIssue(fromDaemonSchema, raw) },
        'ignoring a message from the checkpoint daemon',
      );
      return;
    }
    const message: FromDaemon = parsed.data;
    switch (message.kind) {
      case 'ready':
        break;
      case 'committed':
        this.#options.onCommit({ job: message.job, level: message.level, step: message.step });
        break;
      case 'registered': {
        const { worldSize, localRanks, l3Every, everySteps, keep } = message.registration;
        const ranks = this.#registrations.get(message.jobId) ?? new Map<number, Registration>();
        this.#registrations.set(message.jobId, ranks);
        ranks.set(message.rank, {
          worldSize,
          localRanks,
          ...(l3Every === undefined ? {} : { l3Every }),
          ...(everySteps === undefined ? {} : { everySteps }),
          ...(keep === undefined ? {} : { keep }),
        });
        // Ranks a newer registration no longer lists are not replayed.
        for (const rank of ranks.keys()) if (!localRanks.includes(rank)) ranks.delete(rank);
        break;
      }
      default:
        message satisfies never;
    }
  }

  #exited(
    child: ChildProcess,
    code: number | null,
    signal: NodeJS.Signals | null,
    livedMs: number,
  ): void {
    if (this.#state !== 'running' || child !== this.#child) return;
    this.#restarting = sleep(100).then(() => this.#restart(child.pid, code, signal, livedMs));
  }

  async #restart(
    pid: number | undefined,
    code: number | null,
    signal: NodeJS.Signals | null,
    livedMs: number,
  ): Promise<void> {
    const o = this.#options;
    if (this.#state !== 'running') return;
    o.log.error(
      { daemon: pid, exitCode: code, signal, stderr: this.#stderrTail.join('\n') },
      'the checkpoint daemon exited unexpectedly; restarting it',
    );
    const backoff = o.restartBackoff ?? { initialMs: 200, maxMs: 5000 };
    // A daemon that had run a while restarts at once; one in a crash loop backs off.
    let failures = livedMs >= stableMs ? 0 : 1;
    for (;;) {
      if (failures > 0) await sleep(backoffMs(failures, backoff), this.#stop.signal);
      if (this.#state !== 'running') return;
      // The same port first: peers and the control plane know it. If it is taken and the
      // configured port was 0, any port (the agent re-announces it).
      const listen =
        failures > 1 && o.listen.port === 0
          ? o.listen
          : { host: o.listen.host, port: this.#address?.port ?? o.listen.port };
      try {
        await this.#spawn(listen);
        this.#restarts += 1;
        return;
      } catch (error) {
        if (this.#state !== 'running') return;
        failures += 1;
        o.log.error(
          { err: error instanceof Error ? error.message : String(error), failures },
          'the checkpoint daemon did not restart; retrying',
        );
      }
    }
  }

  /** One line of the daemon's output into the agent's log: its own pino record when it is one. */
  #logLine(pid: number | undefined, stream: 'stdout' | 'stderr', line: string): void {
    if (line.trim() === '') return;
    const log = this.#options.log;
    let record: unknown = null;
    if (line.startsWith('{'))
      try {
        record = JSON.parse(line);
      } catch {
        record = null;
      }
    if (typeof record === 'object' && record !== null && 'msg' in record) {
      const fields: Record<string, unknown> = { ...(record as Record<string, unknown>) };
      const { level, msg } = fields;
      // pino's own keys: the agent's record has its own time, level, pid and name.
      for (const key of ['level', 'msg', 'time', 'pid', 'hostname', 'name']) delete fields[key];
      const at =
        typeof level === 'number' && level >= 50 ? 'error' : level === 40 ? 'warn' : 'info';
      log[at]({ daemon: pid, ...fields }, String(msg));
      return;
    }
    log[stream === 'stderr' ? 'warn' : 'info']({ daemon: pid, stream }, line);
  }
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function exited(child: ChildProcess): Promise<void> {
  if (!running(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

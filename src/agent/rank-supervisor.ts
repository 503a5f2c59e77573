import { isAbsolute, join, resolve } from 'node:path';
import type {
  ExecutionBackend,
  LaunchSpec,
  OutputStream,
  RankExit,
  RankHandle,
} from '../backends/index.ts';
import type { AgentLog } from './agent-log.ts';
import { processStartTicks, saveRankRecords, type RankRecord } from './orphans.ts';
import type {
  AgentEvent,
  LaunchCommand,
  ProgressReport,
  RankProgress,
  RankReport,
  RestoredReport,
} from './protocol.ts';
import { rankEnv, type RankEnvContext } from './rank-env.ts';
import { sameLaunch, warmable, warmLaunchSpec, type WarmAnswer } from './warm-start.ts';

/** Which rank of which attempt of which job. */
export interface RankKey {
  readonly jobId: string;
  readonly attempt: number;
  readonly rank: number;
}

export interface RankSupervisorOptions {
  readonly backend: ExecutionBackend;
  readonly env: RankEnvContext;
  /** Rank logs go to `<logsDir>/<job>/<attempt>/rank-<R>.log`. */
  readonly logsDir: string;
  readonly logMaxBytes: number;
  readonly logKeepFiles: number;
  /** The CPUs ranks run on (default: any): all but the node's housekeeping cores. */
  readonly cpus?: readonly number[];
  /** Where the live ranks are remembered, for the next agent to reap if this one dies. */
  readonly recordsPath: string;
  /** `rank-exited` and (coalesced) `progress` events. */
  readonly onEvent: (event: AgentEvent) => void;
  readonly onOutput: (rank: RankKey, stream: OutputStream, text: string) => void;
  /** At most one progress event per rank per this interval (default 250 ms); the latest wins. */
  readonly progressFlushMs?: number;
  /** How long an exited rank stays in the heartbeat (default 5 min). */
  readonly retainExitedMs?: number;
  readonly log: AgentLog;
  readonly now?: () => number;
  /**
   * Start each rank's next attempt warm (default true): once a `<python> script.py` rank
   * trains, an interpreter for its next attempt imports torch and waits; an in-place restart
   * with the same launch (but for MASTER_*, CUBE_ATTEMPT) runs in it instead of a cold start.
   * A job opts out with `CUBE_WARM_START=0` in its env.
   */
  readonly warmStart?: boolean;
  /** How long a warm interpreter waits after its job's last rank here ended (default 120 s). */
  readonly warmIdleMs?: number;
}

/** A warm interpreter waiting to become a rank's next attempt (warm-start.ts). */
interface Warm {
  readonly key: string;
  readonly jobId: string;
  readonly rank: number;
  readonly attempt: number;
  /** The launch a cold start of that attempt would have, as predicted. */
  readonly predicted: LaunchSpec;
  readonly token: string;
  handle: RankHandle | null;
  spawning: Promise<void>;
  answer: WarmAnswer | null;
  waiter: ((answer: WarmAnswer) => void) | null;
  adopted: Entry | null;
  exited: boolean;
}

interface Entry extends RankKey {
  readonly localRank: number;
  state: RankReport['state'];
  handle: RankHandle | null;
  startTicks: string | null;
  exitCode: number | null;
  signal: string | null;
  progress: RankProgress | null;
  exitedAtMs: number | null;
  launching: Promise<void>;
  /** The launch that started it, to start its next attempt warm. */
  readonly command: LaunchCommand;
  warmed: boolean;
}

/**
 * The ranks of this node: starts them for launch commands (idempotently: a command repeated
 * by the control plane starts nothing twice), stops them for kill commands, keeps their
 * state and last progress for the heartbeat, and reports exits and progress as events.
 */
export class RankSupervisor {
  readonly #options: RankSupervisorOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #pendingProgress = new Map<string, AgentEvent>();
  #progressTimer: NodeJS.Timeout | null = null;
  #silent = false;
  #records: Promise<void> = Promise.resolve();
  /** Warm interpreters by `job/rank`, each for that rank's next attempt. */
  readonly #warm = new Map<string, Warm>();
  /** Every warm interpreter still running, adopted or not, by its token. */
  readonly #warmTokens = new Map<string, Warm>();

  constructor(options: RankSupervisorOptions) {
    this.#options = options;
  }

  /** Ranks not yet exited. */
  get liveCount(): number {
    return [...this.#entries.values()].filter((e) => e.state !== 'exited').length;
  }

  /**
   * Starts the command's ranks that are not already known. Ranks of an older attempt of the
   * same job that still run are stopped first (grace `graceMs`); a command older than a known
   * attempt is ignored.
   */
  async launch(command: LaunchCommand, graceMs: number): Promise<void> {
    const sameJob = [...this.#entries.values()].filter((e) => e.jobId === command.jobId);
    if (sameJob.some((e) => e.attempt > command.attempt)) {
      this.#options.log.warn(
        { jobId: command.jobId, attempt: command.attempt },
        'ignoring a launch of an attempt older than one already seen',
      );
      return;
    }
    if (sameJob.some((e) => e.attempt < command.attempt && e.state !== 'exited'))
      await this.kill(command.jobId, command.attempt - 1, graceMs);
    for (const e of sameJob)
      if (e.attempt < command.attempt && e.state === 'exited') this.#entries.delete(keyOf(e));
    // Warm interpreters of this job for ranks or an attempt this launch does not bring here
    // (the gang moved) would wait for nothing.
    for (const warm of [...this.#warm.values()])
      if (
        warm.jobId === command.jobId &&
        (warm.attempt < command.attempt ||
          (warm.attempt === command.attempt && !command.ranks.some((r) => r.rank === warm.rank)))
      )
        this.#dropWarm(warm);
    await Promise.all(
      command.ranks.map((r) => {
        const key = keyOf({ jobId: command.jobId, attempt: command.attempt, rank: r.rank });
        const known = this.#entries.get(key);
        if (known !== undefined) return known.launching;
        const entry: Entry = {
          jobId: command.jobId,
          attempt: command.attempt,
          rank: r.rank,
          localRank: r.localRank,
          state: 'starting',
          handle: null,
          startTicks: null,
          exitCode: null,
          signal: null,
          progress: null,
          exitedAtMs: null,
          launching: Promise.resolve(),
          command,
          warmed: false,
        };
        this.#entries.set(key, entry);
        entry.launching = this.#start(command, entry);
        return entry.launching;
      }),
    );
  }

  /** Stops every live rank of `jobId` with an attempt up to `attempt`; resolves when they exited. */
  async kill(jobId: string, attempt: number, graceMs: number): Promise<void> {
    const targets = [...this.#entries.values()].filter(
      (e) => e.jobId === jobId && e.attempt <= attempt && e.state !== 'exited',
    );
    await Promise.all(targets.map((e) => this.#kill(e, graceMs)));
    this.#expireWarm(jobId);
  }

  /**
   * A warm interpreter asks what to run (`POST /v1/warm` on the agent's socket): the launch it
   * was adopted for, once it is; `{exit: true}` when it is not wanted (or unknown).
   */
  warmRequest(token: string): Promise<WarmAnswer> {
    const warm = this.#warmTokens.get(token);
    if (warm === undefined) return Promise.resolve({ exit: true });
    if (warm.answer !== null) return Promise.resolve(warm.answer);
    return new Promise((resolve) => {
      warm.waiter = resolve;
    });
  }

  /** Stops every live rank (the agent is stopping), and every warm interpreter. */
  async killAll(graceMs: number): Promise<void> {
    for (const warm of [...this.#warm.values()]) this.#dropWarm(warm);
    await Promise.all(
      [...this.#entries.values()]
        .filter((e) => e.state !== 'exited')
        .map((e) => this.#kill(e, graceMs)),
    );
  }

  /** SIGKILLs one live rank (fault injection): the given one, else the first; null when none. */
  async killOne(jobId?: string, rank?: number): Promise<RankKey | null> {
    const target = [...this.#entries.values()].find(
      (e) =>
        e.state === 'running' &&
        (jobId === undefined || e.jobId === jobId) &&
        (rank === undefined || e.rank === rank),
    );
    if (target === undefined) return null;
    await this.#kill(target, 0);
    return { jobId: target.jobId, attempt: target.attempt, rank: target.rank };
  }

  /** Kills every rank at once and reports nothing (a simulated node loss). */
  async crash(): Promise<void> {
    this.#silent = true;
    await this.killAll(0);
  }

  /** Records a rank's progress report; false when no such rank runs here. */
  progress(report: ProgressReport): boolean {
    const entry = this.#find(report.jobId, report.rank);
    if (entry === undefined) return false;
    if (!entry.warmed && entry.state === 'running') {
      entry.warmed = true;
      // Once it trains, not before: the warm import must not slow this attempt's own start.
      this.#prewarm(entry);
    }
    entry.progress = {
      step: report.step,
      loss: report.loss ?? null,
      tokensPerS: report.tokensPerS ?? null,
      at: new Date(this.#now()).toISOString(),
    };
    this.#pendingProgress.set(keyOf(entry), {
      kind: 'progress',
      jobId: entry.jobId,
      attempt: entry.attempt,
      rank: entry.rank,
      step: report.step,
      loss: report.loss ?? null,
      tokensPerS: report.tokensPerS ?? null,
      stepTimeS: report.stepTimeS ?? null,
    });
    this.#progressTimer ??= setTimeout(
      () => this.#flushProgress(),
      this.#options.progressFlushMs ?? 250,
    );
    return true;
  }

  /** Reports (at once) that a rank restored `step` from `level`; false when no such rank runs here. */
  restored(report: RestoredReport): boolean {
    const entry = this.#find(report.jobId, report.rank);
    if (entry === undefined) return false;
    if (!this.#silent)
      this.#options.onEvent({
        kind: 'restored',
        jobId: entry.jobId,
        attempt: entry.attempt,
        rank: entry.rank,
        step: report.step,
        level: report.level,
      });
    return true;
  }

  /** Every rank for the heartbeat; exited ranks stay listed for `retainExitedMs`. */
  reports(): RankReport[] {
    const now = this.#now();
    const retainMs = this.#options.retainExitedMs ?? 5 * 60_000;
    for (const [key, e] of this.#entries)
      if (e.exitedAtMs !== null && now - e.exitedAtMs > retainMs) this.#entries.delete(key);
    return [...this.#entries.values()]
      .sort((a, b) => a.jobId.localeCompare(b.jobId) || a.attempt - b.attempt || a.rank - b.rank)
      .map((e) => ({
        jobId: e.jobId,
        attempt: e.attempt,
        rank: e.rank,
        state: e.state,
        pid: e.handle?.pid ?? null,
        exitCode: e.exitCode,
        signal: e.signal,
        progress: e.progress,
      }));
  }

  /** Sends pending progress events now and stops the timer. */
  close(): void {
    this.#flushProgress();
  }

  /** What a cold start of `entry` for `command` runs. */
  #specFor(
    command: LaunchCommand,
    entry: {
      readonly jobId: string;
      readonly attempt: number;
      readonly rank: number;
      readonly localRank: number;
    },
  ): LaunchSpec {
    const options = this.#options;
    const workingDir = isAbsolute(command.workingDir)
      ? command.workingDir
      : resolve(command.workingDir);
    const key: RankKey = { jobId: entry.jobId, attempt: entry.attempt, rank: entry.rank };
    return {
      name: `${entry.jobId}/${entry.attempt}/rank-${entry.rank}`,
      command: command.command,
      workingDir,
      env: rankEnv(command, entry, options.env),
      log: {
        path: join(options.logsDir, entry.jobId, String(entry.attempt), `rank-${entry.rank}.log`),
        maxBytes: options.logMaxBytes,
        keepFiles: options.logKeepFiles,
      },
      onOutput: (stream, text) => options.onOutput(key, stream, text),
      ...(options.cpus === undefined ? {} : { cpus: options.cpus }),
    };
  }

  /** Starts an interpreter for `entry`'s next attempt that imports torch and waits (warm-start.ts). */
  #prewarm(entry: Entry): void {
    const options = this.#options;
    const command = entry.command;
    if (options.warmStart === false || !warmable(command.command, command.env)) return;
    const key = `${entry.jobId}/${entry.rank}`;
    const old = this.#warm.get(key);
    if (old !== undefined) {
      if (old.attempt > entry.attempt) return;
      this.#dropWarm(old);
    }
    const next = { ...command, attempt: entry.attempt + 1 };
    const predicted = this.#specFor(next, { ...entry, attempt: next.attempt });
    const { spec, token } = warmLaunchSpec(predicted);
    const warm: Warm = {
      key,
      jobId: entry.jobId,
      rank: entry.rank,
      attempt: next.attempt,
      predicted,
      token,
      handle: null,
      spawning: Promise.resolve(),
      answer: null,
      waiter: null,
      adopted: null,
      exited: false,
    };
    this.#warm.set(key, warm);
    this.#warmTokens.set(token, warm);
    warm.spawning = options.backend.launch(spec).then(
      (handle) => {
        warm.handle = handle;
        options.backend.onExit(handle, (exit) => this.#warmExited(warm, exit));
        if (this.#warm.get(key) !== warm) void options.backend.kill(handle, { graceMs: 0 });
      },
      (error: unknown) => {
        warm.exited = true;
        this.#warmTokens.delete(token);
        if (this.#warm.get(key) === warm) this.#warm.delete(key);
        options.log.warn(
          { jobId: entry.jobId, rank: entry.rank, err: String(error) },
          'cannot start a warm interpreter; the next attempt starts cold',
        );
      },
    );
  }

  #warmExited(warm: Warm, exit: RankExit): void {
    warm.exited = true;
    this.#warmTokens.delete(warm.token);
    if (warm.adopted !== null) this.#exited(warm.adopted, exit.exitCode, exit.signal);
    else if (this.#warm.get(warm.key) === warm) this.#warm.delete(warm.key);
  }

  /** Tells a warm interpreter to exit (and makes sure it does). */
  #dropWarm(warm: Warm): void {
    if (this.#warm.get(warm.key) === warm) this.#warm.delete(warm.key);
    if (warm.adopted !== null) return;
    const answer: WarmAnswer = { exit: true };
    warm.answer = answer;
    warm.waiter?.(answer);
    warm.waiter = null;
    void warm.spawning.then(() => {
      if (warm.handle !== null && !warm.exited)
        void this.#options.backend.kill(warm.handle, { graceMs: 0 }).catch(() => undefined);
    });
  }

  /**
   * Drops the job's warm interpreters once no rank of it has run here for `warmIdleMs`: the
   * job ended, or went elsewhere, rather than restarting in place.
   */
  #expireWarm(jobId: string): void {
    const timer = setTimeout(() => {
      const live = [...this.#entries.values()].some(
        (e) => e.jobId === jobId && e.state !== 'exited',
      );
      if (!live)
        for (const warm of [...this.#warm.values()]) if (warm.jobId === jobId) this.#dropWarm(warm);
    }, this.#options.warmIdleMs ?? 120_000);
    timer.unref();
  }

  /**
   * Hands a launch to the warm interpreter waiting for it, when it was started for exactly
   * this launch; true when it did. A warm interpreter for another launch is dropped.
   */
  async #adoptWarm(entry: Entry, spec: LaunchSpec): Promise<boolean> {
    const warm = this.#warm.get(`${entry.jobId}/${entry.rank}`);
    if (warm === undefined) return false;
    if (warm.attempt !== entry.attempt || !sameLaunch(warm.predicted, spec)) {
      this.#dropWarm(warm);
      return false;
    }
    await warm.spawning;
    if (warm.handle === null || warm.exited || this.#warm.get(warm.key) !== warm) return false;
    this.#warm.delete(warm.key);
    warm.adopted = entry;
    const answer: WarmAnswer = { argv: spec.command, env: spec.env, cwd: spec.workingDir };
    warm.answer = answer;
    warm.waiter?.(answer);
    warm.waiter = null;
    entry.handle = warm.handle;
    return true;
  }

  async #start(command: LaunchCommand, entry: Entry): Promise<void> {
    const options = this.#options;
    const key: RankKey = { jobId: entry.jobId, attempt: entry.attempt, rank: entry.rank };
    try {
      const spec = this.#specFor(command, entry);
      if (await this.#adoptWarm(entry, spec)) {
        entry.state = 'running';
        entry.startTicks = await processStartTicks((entry.handle as RankHandle).pid);
        this.#saveRecords();
        options.log.info(
          { ...key, pid: (entry.handle as RankHandle).pid, warm: true },
          'rank started',
        );
        return;
      }
      const handle = await options.backend.launch(spec);
      entry.handle = handle;
      entry.state = 'running';
      entry.startTicks = await processStartTicks(handle.pid);
      options.backend.onExit(handle, (exit) => this.#exited(entry, exit.exitCode, exit.signal));
      this.#saveRecords();
      options.log.info({ ...key, pid: handle.pid }, 'rank started');
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      options.log.warn({ ...key, err: message }, 'rank could not be started');
      options.onOutput(key, 'stderr', `cube agent: ${message}\n`);
      // As a shell reports a command it cannot run.
      this.#exited(entry, 127, null);
    }
  }

  async #kill(entry: Entry, graceMs: number): Promise<void> {
    // A rank still starting is stopped as soon as it exists.
    if (entry.handle === null) await entry.launching;
    if (entry.handle === null) return;
    await this.#options.backend.kill(entry.handle, { graceMs });
    // The exit listener ran before kill() resolved (both wait on the same exit).
    await Promise.resolve();
  }

  #exited(entry: Entry, exitCode: number | null, signal: string | null): void {
    if (entry.state === 'exited') return;
    entry.state = 'exited';
    entry.exitCode = exitCode;
    entry.signal = signal;
    entry.exitedAtMs = this.#now();
    this.#saveRecords();
    // A rank that finished has no next attempt to wait for; one that failed may restart here.
    if (exitCode === 0) {
      const warm = this.#warm.get(`${entry.jobId}/${entry.rank}`);
      if (warm !== undefined) this.#dropWarm(warm);
    } else this.#expireWarm(entry.jobId);
    if (this.#silent) return;
    const key = keyOf(entry);
    const pending = this.#pendingProgress.get(key);
    if (pending !== undefined) {
      this.#pendingProgress.delete(key);
      this.#options.onEvent(pending);
    }
    this.#options.log.info(
      { jobId: entry.jobId, attempt: entry.attempt, rank: entry.rank, exitCode, signal },
      'rank exited',
    );
    this.#options.onEvent({
      kind: 'rank-exited',
      jobId: entry.jobId,
      attempt: entry.attempt,
      rank: entry.rank,
      exitCode,
      signal,
    });
  }

  #flushProgress(): void {
    if (this.#progressTimer !== null) clearTimeout(this.#progressTimer);
    this.#progressTimer = null;
    const events = [...this.#pendingProgress.values()];
    this.#pendingProgress.clear();
    if (!this.#silent) for (const event of events) this.#options.onEvent(event);
  }

  #saveRecords(): void {
    const records: RankRecord[] = [...this.#entries.values()]
      .filter((e) => e.state === 'running' && e.handle !== null)
      .map((e) => ({
        jobId: e.jobId,
        attempt: e.attempt,
        rank: e.rank,
        pid: e.handle?.pid ?? 0,
        startTicks: e.startTicks,
      }));
    this.#records = this.#records
      .then(() => saveRankRecords(this.#options.recordsPath, records))
      .catch((error: unknown) =>
        this.#options.log.warn(
          { err: String(error), path: this.#options.recordsPath },
          'cannot remember the live ranks',
        ),
      );
  }

  /** The rank's newest attempt on this node, a live one first. */
  #find(jobId: string, rank: number): Entry | undefined {
    return [...this.#entries.values()]
      .filter((e) => e.jobId === jobId && e.rank === rank)
      .sort(
        (a, b) =>
          Number(a.state === 'exited') - Number(b.state === 'exited') || b.attempt - a.attempt,
      )[0];
  }

  #now(): number {
    return this.#options.now?.() ?? Date.now();
  }
}

function keyOf(k: RankKey): string {
  return `${k.jobId}/${k.attempt}/${k.rank}`;
}

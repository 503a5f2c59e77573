/**
 * The seam between the node agent and wherever rank processes run: local processes today,
 * Slurm or Kubernetes later. A backend starts one rank per `launch`, captures its output, and
 * tells its listeners how it ended.
 */

/** Which output stream a chunk of a rank's output came from. */
export type OutputStream = 'stdout' | 'stderr';

/** Where a rank's output is kept on disk: one file, rotated by size. */
export interface RankLogSpec {
  /** The current log file; rotated files are `<path>.1` (newest) to `<path>.<keepFiles>`. */
  readonly path: string;
  /** A file is rotated before it would grow past this size. */
  readonly maxBytes: number;
  /** How many rotated files are kept besides the current one (0: none). */
  readonly keepFiles: number;
}

/** What one rank process is started with. */
export interface LaunchSpec {
  /** A name for log lines and errors, e.g. `j-abc/0/rank-3`. */
  readonly name: string;
  /** argv; the first element is the program. */
  readonly command: readonly string[];
  readonly workingDir: string;
  /** The complete environment of the process: nothing else is inherited. */
  readonly env: Readonly<Record<string, string>>;
  readonly log: RankLogSpec;
  /** The CPUs every thread of the rank may run on (default: any); processes it starts inherit them. */
  readonly cpus?: readonly number[];
  /** Called with each chunk of decoded output, in order within a stream, before the exit. */
  readonly onOutput?: (stream: OutputStream, text: string) => void;
}

/** A started rank: plain data, so it can be stored and passed around. */
export interface RankHandle {
  /** Unique within the backend. */
  readonly id: string;
  /** The process id (with the local backend also the process group id). */
  readonly pid: number;
}

/** How a rank ended: an exit code, or the signal that ended it. */
export interface RankExit {
  readonly exitCode: number | null;
  readonly signal: string | null;
}

export interface KillOptions {
  /** Time between the polite signal (SIGTERM) and the forced one (SIGKILL); 0: SIGKILL at once. */
  readonly graceMs: number;
}

/** Starts, stops and watches rank processes. */
export interface ExecutionBackend {
  /**
   * Starts one rank. Resolves once the process exists; rejects (CubeError `INFEASIBLE`) when it
   * cannot be started (no such program or working directory), after logging why to its log.
   */
  launch(spec: LaunchSpec): Promise<RankHandle>;
  /**
   * Stops a rank and everything it started: SIGTERM, then SIGKILL after `graceMs`. Resolves
   * with its exit (at once when it has already exited).
   */
  kill(handle: RankHandle, options: KillOptions): Promise<RankExit>;
  /**
   * Calls `listener` once when the rank has exited and its output is flushed (asynchronously,
   * also when it had already exited). Returns a function that removes the listener.
   */
  onExit(handle: RankHandle, listener: (exit: RankExit) => void): () => void;
  /** Kills every rank still running, without grace, and forgets them. */
  close(): Promise<void>;
}

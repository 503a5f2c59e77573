import { spawn, type ChildProcess } from 'node:child_process';
import { CubeError, pinProcess } from '../../core/index.ts';
import type {
  ExecutionBackend,
  KillOptions,
  LaunchSpec,
  OutputStream,
  RankExit,
  RankHandle,
} from '../execution-backend.ts';
import { RotatingLog } from './rotating-log.ts';

interface LocalRank {
  readonly handle: RankHandle;
  readonly child: ChildProcess;
  readonly exited: Promise<RankExit>;
  exit: RankExit | null;
  killing: Promise<RankExit> | null;
}

/** How long the exit waits for the output pipes to drain after the process is gone. */
const drainTimeoutMs = 2000;

/**
 * Runs ranks as local processes, each the leader of its own process group (so a kill reaches
 * everything the rank started). stdout and stderr go to one rotating log file per rank and to
 * `spec.onOutput`. When a rank's main process exits, whatever it left running in its group is
 * killed.
 */
export class LocalBackend implements ExecutionBackend {
  readonly #ranks = new Map<string, LocalRank>();
  #next = 0;

  async launch(spec: LaunchSpec): Promise<RankHandle> {
    const [program, ...args] = spec.command;
    if (program === undefined || program === '')
      throw new CubeError('INVALID_VALUE', `rank ${spec.name}: the command is empty`, {
        where: { field: 'command' },
      });
    const log = await RotatingLog.open(spec.log);
    const child = spawn(program, args, {
      cwd: spec.workingDir,
      env: { ...spec.env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const started = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', (error) => resolve(error));
    });
    if (started !== null || child.pid === undefined) {
      const reason = started?.message ?? 'no process id';
      log.write(`cube: cannot start ${spec.command.join(' ')} in ${spec.workingDir}: ${reason}\n`);
      await log.close();
      throw new CubeError(
        'INFEASIBLE',
        `cannot start rank ${spec.name}: ${reason} (program ${program}, working directory ${spec.workingDir})`,
        {
          cause: started,
          hint: 'check that the program and the working directory exist on this node',
        },
      );
    }
    if (spec.cpus !== undefined) {
      // Set right after the exec, before the program has started threads of its own (and
      // every thread it has by then is set too).
      try {
        pinProcess(child.pid, spec.cpus, 'cpus');
      } catch (error) {
        child.kill('SIGKILL');
        const reason = error instanceof Error ? error.message : String(error);
        log.write(`cube: cannot start ${spec.command.join(' ')}: ${reason}\n`);
        await log.close();
        throw new CubeError('INFEASIBLE', `cannot start rank ${spec.name}: ${reason}`, {
          cause: error,
        });
      }
    }
    const handle: RankHandle = { id: `${spec.name}#${this.#next++}`, pid: child.pid };
    const drained = [pipe(child, 'stdout', log, spec), pipe(child, 'stderr', log, spec)];
    const exited = new Promise<RankExit>((resolve) => {
      child.once('exit', (code, signal) => {
        // Whatever the rank left behind in its process group goes with it.
        killGroup(handle.pid, 'SIGKILL');
        const exit: RankExit = { exitCode: code, signal };
        void settle(drained, child).then(async () => {
          await log.close();
          rank.exit = exit;
          resolve(exit);
        });
      });
    });
    const rank: LocalRank = { handle, child, exited, exit: null, killing: null };
    this.#ranks.set(handle.id, rank);
    return handle;
  }

  kill(handle: RankHandle, options: KillOptions): Promise<RankExit> {
    const rank = this.#rank(handle);
    if (rank.exit !== null) return Promise.resolve(rank.exit);
    rank.killing ??= (async () => {
      killGroup(handle.pid, options.graceMs <= 0 ? 'SIGKILL' : 'SIGTERM');
      const timer = setTimeout(
        () => killGroup(handle.pid, 'SIGKILL'),
        Math.max(0, options.graceMs),
      );
      try {
        return await rank.exited;
      } finally {
        clearTimeout(timer);
      }
    })();
    return rank.killing;
  }

  onExit(handle: RankHandle, listener: (exit: RankExit) => void): () => void {
    const rank = this.#rank(handle);
    let active = true;
    void rank.exited.then((exit) => {
      if (active) listener(exit);
    });
    return () => {
      active = false;
    };
  }

  async close(): Promise<void> {
    const ranks = [...this.#ranks.values()];
    this.#ranks.clear();
    await Promise.all(
      ranks.map(async (rank) => {
        if (rank.exit === null) killGroup(rank.handle.pid, 'SIGKILL');
        await rank.exited;
      }),
    );
  }

  #rank(handle: RankHandle): LocalRank {
    const rank = this.#ranks.get(handle.id);
    if (rank === undefined)
      throw new CubeError('UNKNOWN_ID', `no rank ${handle.id} in the local backend`, {
        where: { field: 'handle' },
      });
    return rank;
  }
}

function pipe(
  child: ChildProcess,
  stream: OutputStream,
  log: RotatingLog,
  spec: LaunchSpec,
): Promise<void> {
  const readable = child[stream];
  if (readable === null) return Promise.resolve();
  readable.setEncoding('utf8');
  readable.on('data', (text: string) => {
    log.write(text);
    spec.onOutput?.(stream, text);
  });
  return new Promise((resolve) => {
    readable.once('close', resolve);
    readable.once('error', () => resolve());
  });
}

/** Waits for the output pipes to close; a grandchild that escaped the group may hold them open. */
async function settle(drained: Promise<void>[], child: ChildProcess): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve();
    }, drainTimeoutMs);
  });
  await Promise.race([Promise.all(drained), timeout]);
  clearTimeout(timer);
}

/** Signals a whole process group; a group that is already gone is not an error. */
function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

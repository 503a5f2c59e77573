import type { LaunchCommand } from './protocol.ts';
import { formatCpuList } from '../core/index.ts';

/** What the agent knows that a rank's environment needs besides its launch command. */
export interface RankEnvContext {
  /** This node's name (`CUBE_NODE`, the checkpoint daemon's identity). */
  readonly node: string;
  /** The L1 level root (`CUBE_CKPT_L1`). */
  readonly l1Root: string;
  /** The L3 level root when the command names none. */
  readonly defaultL3Root: string;
  /** The agent's Unix socket: progress and restore reports (`CUBE_AGENT_SOCKET`). */
  readonly socketPath: string;
  /** The checkpoint daemon's local API socket (`CUBE_CKPT_SOCKET`). */
  readonly ckptSocketPath: string;
  /** The node's housekeeping cores for the client's background thread (`CUBE_CKPT_CPUS`). */
  readonly ckptCpus?: readonly number[];
  /** Inherited variables (the agent's own environment); inherited `CUBE_*` ones are dropped. */
  readonly baseEnv: Readonly<Record<string, string | undefined>>;
}

/**
 * The environment of one rank: the inherited one, `OMP_NUM_THREADS=1` and
 * `PYTHONUNBUFFERED=1` unless the job sets them, the job's `env`, then torch's contract
 * (`MASTER_ADDR`, `MASTER_PORT`, `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`) and
 * Cube's `CUBE_*` variables, which nothing overrides.
 */
export function rankEnv(
  command: LaunchCommand,
  rank: { readonly rank: number; readonly localRank: number },
  context: RankEnvContext,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(context.baseEnv))
    if (value !== undefined && !key.startsWith('CUBE_')) env[key] = value;
  env.OMP_NUM_THREADS = '1';
  env.PYTHONUNBUFFERED = '1';
  Object.assign(env, command.env);
  const ckpt = command.checkpoint;
  const keep = Object.entries(ckpt.keep)
    .map(([level, count]) => `${level}=${count}`)
    .join(',');
  Object.assign(env, {
    MASTER_ADDR: command.masterAddr,
    MASTER_PORT: String(command.masterPort),
    RANK: String(rank.rank),
    WORLD_SIZE: String(command.worldSize),
    LOCAL_RANK: String(rank.localRank),
    LOCAL_WORLD_SIZE: String(command.localWorldSize),
    CUBE_JOB_ID: command.jobId,
    CUBE_ATTEMPT: String(command.attempt),
    CUBE_NODE: context.node,
    CUBE_CKPT_L1: context.l1Root,
    CUBE_CKPT_L3: ckpt.l3Path ?? context.defaultL3Root,
    CUBE_CKPT_L3_EVERY: String(ckpt.l3Every),
    CUBE_CKPT_SOCKET: context.ckptSocketPath,
    CUBE_AGENT_SOCKET: context.socketPath,
    ...(keep === '' ? {} : { CUBE_CKPT_KEEP: keep }),
    ...(ckpt.everySteps == null ? {} : { CUBE_CKPT_EVERY: String(ckpt.everySteps) }),
    ...(context.ckptCpus === undefined ? {} : { CUBE_CKPT_CPUS: formatCpuList(context.ckptCpus) }),
  });
  return env;
}

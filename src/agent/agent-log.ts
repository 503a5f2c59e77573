import type { DaemonLog } from '../ckpt/daemon/index.ts';

/** The agent's structured log: pino, or anything with `info`, `warn` and `error` (as the daemon's). */
export type AgentLog = DaemonLog;

/** A log that drops everything (tests). */
export const silentLog: AgentLog = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

import type { Logger } from 'pino';

/** The daemon's structured log: pino, or anything with the same two methods. */
export type DaemonLog = Pick<Logger, 'info' | 'warn' | 'error'>;

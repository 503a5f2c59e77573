import { chmod, rm } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { createLocalApp } from '../ckpt/daemon/index.ts';
import { z } from 'zod';
import { CubeError, formatIssuePath } from '../core/index.ts';
import {
  progressReportSchema,
  restoredReportSchema,
  type ProgressReport,
  type RestoredReport,
} from './protocol.ts';
import type { WarmAnswer } from './warm-start.ts';

/** Unix socket paths are limited to 107 bytes on Linux. */
const maxSocketPathBytes = 107;

/** What the agent does with reports from its ranks; false: no such rank runs here. */
export interface RankReports {
  readonly progress: (report: ProgressReport) => boolean;
  readonly restored: (report: RestoredReport) => boolean;
  /** A warm interpreter waits here for the launch it becomes (warm-start.ts). */
  readonly warm?: (token: string) => Promise<WarmAnswer>;
}

const warmRequestSchema = z.object({ token: z.string().regex(/^[0-9a-f]{32}$/) });

/** Fails with a clear error when `socketPath` (the agent's or the daemon's) is too long for Linux. */
export function checkSocketPath(socketPath: string, what: string): void {
  if (Buffer.byteLength(socketPath) > maxSocketPathBytes)
    throw new CubeError(
      'INVALID_VALUE',
      `the ${what} socket path ${socketPath} is longer than ${maxSocketPathBytes} bytes`,
      { where: { field: '--data-dir' }, hint: 'use a shorter --data-dir' },
    );
}

/**
 * The agent's Unix socket (`CUBE_AGENT_SOCKET`): `POST /v1/progress {jobId, rank, step, loss,
 * tokensPerS}` (`cube.report_progress`) and `POST /v1/restored {jobId, rank, step, level}`
 * (`cube.report_restored`), answered 204, or 404 when no such rank runs on this node;
 * `POST /v1/warm {token}` answers a warm interpreter, when its launch comes, with
 * `{argv, env, cwd}` or `{exit: true}` (python/cube/warm_start.py). The
 * checkpoint daemon's local API is on the daemon's own socket (`CUBE_CKPT_SOCKET`).
 */
export async function startLocalSocket(
  socketPath: string,
  reports: RankReports,
): Promise<FastifyInstance> {
  checkSocketPath(socketPath, 'agent');
  const app = createLocalApp();
  const route = <S extends z.ZodType<{ jobId: string; rank: number }>>(
    path: string,
    schema: S,
    accept: (report: z.output<S>) => boolean,
  ): void => {
    app.post(path, (request, reply) => {
      const parsed = schema.safeParse(request.body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const at = issue === undefined ? '' : formatIssuePath(issue.path);
        throw new CubeError(
          'INVALID_VALUE',
          `${path}: ${at === '' ? '' : `${at}: `}${issue?.message ?? 'invalid'}`,
          { where: { path: at } },
        );
      }
      if (!accept(parsed.data))
        throw new CubeError(
          'UNKNOWN_ID',
          `no rank ${parsed.data.rank} of job ${parsed.data.jobId} runs on this node`,
          { where: { rank: parsed.data.rank } },
        );
      void reply.status(204).send();
    });
  };
  route('/v1/progress', progressReportSchema, reports.progress);
  route('/v1/restored', restoredReportSchema, reports.restored);
  const warm = reports.warm;
  if (warm !== undefined)
    app.post('/v1/warm', async (request) => {
      const parsed = warmRequestSchema.safeParse(request.body);
      if (!parsed.success)
        throw new CubeError('INVALID_VALUE', '/v1/warm: token: a 32-digit hex token is required', {
          where: { path: 'token' },
        });
      return warm(parsed.data.token);
    });
  await rm(socketPath, { force: true });
  await app.listen({ path: socketPath });
  // Only this user's processes (its ranks) may connect; the directory is 0700 as well.
  await chmod(socketPath, 0o600);
  return app;
}

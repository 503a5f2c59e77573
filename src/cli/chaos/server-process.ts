import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { CubeError } from '../../core/index.ts';
import { readAdminTokens } from '../../control/control-plane.ts';

const cubeBin = fileURLToPath(new URL('../../../bin/cube.js', import.meta.url));

const readyLineSchema = z.object({
  ready: z.literal(true),
  url: z.string(),
  tokensFile: z.string(),
});

export interface ServerProcessOptions {
  readonly dataDir: string;
  readonly heartbeatTimeoutSeconds: number;
  /** Where the server's output goes (appended across restarts). */
  readonly logFile: string;
}

/**
 * The control plane as a child process (`cube server --allow-fault-injection`), so that a
 * campaign can SIGKILL it and start it again on the same port with the same data directory,
 * as a crash and a supervisor's restart would.
 */
export class ServerProcess {
  readonly #o: ServerProcessOptions;
  #child: ChildProcess | null = null;
  #port = 0;
  #url = '';
  #tokens: { apiToken: string; joinToken: string } | null = null;

  constructor(options: ServerProcessOptions) {
    this.#o = options;
  }

  get url(): string {
    return this.#url;
  }

  get port(): number {
    return this.#port;
  }

  get tokens(): { apiToken: string; joinToken: string } {
    if (this.#tokens === null)
      throw new CubeError('INFEASIBLE', 'the control plane is not started');
    return this.#tokens;
  }

  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** Starts the server (on a free port the first time, on the same port after) and waits for it. */
  async start(timeoutMs = 30_000): Promise<void> {
    const skip = existsSync(this.#o.logFile) ? readFileSync(this.#o.logFile).length : 0;
    const fd = openSync(this.#o.logFile, 'a', 0o600);
    const child = spawn(
      process.execPath,
      [
        cubeBin,
        'server',
        '--data-dir',
        this.#o.dataDir,
        '--port',
        String(this.#port),
        '--heartbeat-timeout-s',
        String(this.#o.heartbeatTimeoutSeconds),
        '--allow-fault-injection',
      ],
      { stdio: ['ignore', fd, fd] },
    );
    closeSync(fd);
    this.#child = child;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = readFileSync(this.#o.logFile).subarray(skip).toString('utf8');
      const line = text.split('\n').find((l) => l.includes('"ready":true'));
      if (line !== undefined) {
        const ready = readyLineSchema.parse(JSON.parse(line));
        this.#url = ready.url;
        this.#port = Number(new URL(ready.url).port);
        this.#tokens = readAdminTokens(dirname(ready.tokensFile));
        return;
      }
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline)
        throw new CubeError(
          'INFEASIBLE',
          `the control plane did not start; its log (${this.#o.logFile}) says:\n${text.slice(-2000)}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGKILLs the server, as a crash would; resolves once it is gone. */
  async kill(): Promise<void> {
    await this.#stop('SIGKILL');
  }

  /** Stops the server (SIGTERM, then SIGKILL after 5 s). */
  async stop(): Promise<void> {
    await this.#stop('SIGTERM');
  }

  async #stop(sig: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill(sig);
    });
  }
}

/** The server's data directory inside a campaign's directory. */
export function serverDataDir(campaignDir: string): string {
  return join(campaignDir, 'server');
}

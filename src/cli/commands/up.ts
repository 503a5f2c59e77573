import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { z } from 'zod';
import { CubeError } from '../../core/index.ts';
import { startEmbeddedAgents } from '../embedded-cluster.ts';
import { saveCredentials } from '../credentials.ts';
import { parsePositiveInt } from '../flags.ts';
import type { CliOutput } from '../output.ts';

const cubeBin = fileURLToPath(new URL('../../../bin/cube.js', import.meta.url));

const upStateSchema = z.object({
  url: z.string(),
  apiToken: z.string(),
  joinToken: z.string(),
  dataDir: z.string(),
  shmRoot: z.string(),
  serverPid: z.int(),
  agents: z.array(z.object({ name: z.string(), pid: z.int(), role: z.string() })),
});
type UpState = z.infer<typeof upStateSchema>;

function defaultDir(): string {
  return process.env.CUBE_STATE_DIR ?? join(homedir(), '.local', 'state', 'cube', 'up');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForReady(
  logFile: string,
  pid: number,
  timeoutMs: number,
): Promise<{ url: string; apiToken: string; joinToken: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    const line = text.split('\n').find((l) => l.includes('"ready":true'));
    if (line !== undefined)
      return JSON.parse(line) as { url: string; apiToken: string; joinToken: string };
    if (!alive(pid) || Date.now() > deadline)
      throw new CubeError(
        'INFEASIBLE',
        `the control plane did not start; its log (${logFile}) says:\n${text.slice(-2000)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `cube up` and `cube down`: an embedded cluster on this machine that outlives the command. */
export function registerUpCommands(program: Command, output: CliOutput): void {
  program
    .command('up')
    .description(
      'start an embedded cluster on this machine: the control plane plus one agent process per node',
    )
    .option('--nodes <n>', 'worker nodes', parsePositiveInt('--nodes'), 4)
    .option(
      '--devices-per-node <d>',
      'CPU stand-in devices per node',
      parsePositiveInt('--devices-per-node'),
      1,
    )
    .option('--spares <s>', 'hot spares', (v) => Number(v), 1)
    .option('--port <port>', 'control plane port (0: any free one)', (v) => Number(v), 7600)
    .option('--data-dir <dir>', 'state, logs and checkpoints (default ~/.local/state/cube/up)')
    .action(
      async (flags: {
        nodes: number;
        devicesPerNode: number;
        spares: number;
        port: number;
        dataDir?: string;
      }) => {
        const dataDir = resolve(flags.dataDir ?? defaultDir());
        const statePath = join(dataDir, 'up.json');
        if (existsSync(statePath)) {
          const state = upStateSchema.parse(JSON.parse(readFileSync(statePath, 'utf8')));
          if (alive(state.serverPid))
            throw new CubeError(
              'INFEASIBLE',
              `a cluster is already up at ${state.url} (data in ${dataDir})`,
              {
                hint: 'run `cube down` first, or pass another --data-dir',
              },
            );
        }
        mkdirSync(dataDir, { recursive: true });
        const serverLog = join(dataDir, 'server.log');
        const fd = openSync(serverLog, 'w');
        const server = spawn(
          process.execPath,
          [
            cubeBin,
            'server',
            '--data-dir',
            join(dataDir, 'server'),
            '--port',
            String(flags.port),
            '--heartbeat-timeout-s',
            '5',
          ],
          {
            stdio: ['ignore', fd, fd],
            detached: true,
          },
        );
        closeSync(fd);
        server.unref();
        const ready = await waitForReady(serverLog, server.pid ?? -1, 30_000);
        const shmRoot = mkdtempSync(join('/dev/shm', 'cube-up-'));
        const agents = startEmbeddedAgents({
          server: ready.url,
          joinToken: ready.joinToken,
          dataDir: join(dataDir, 'nodes'),
          shmRoot,
          nodes: flags.nodes,
          devicesPerNode: flags.devicesPerNode,
          spares: flags.spares,
          detached: true,
        });
        const state: UpState = {
          url: ready.url,
          apiToken: ready.apiToken,
          joinToken: ready.joinToken,
          dataDir,
          shmRoot,
          serverPid: server.pid ?? -1,
          agents: agents.map((a) => ({ name: a.name, pid: a.pid ?? -1, role: a.role })),
        };
        writeFileSync(statePath, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
        saveCredentials({ server: ready.url, token: ready.apiToken });
        output.out(
          [
            `cube is up: ${flags.nodes} worker node${flags.nodes === 1 ? '' : 's'} x ${flags.devicesPerNode} cpu device${flags.devicesPerNode === 1 ? '' : 's'}, ${flags.spares} spare${flags.spares === 1 ? '' : 's'}`,
            `  API        ${ready.url}/api/v1   (OpenAPI: ${ready.url}/api/v1/openapi.json, metrics: ${ready.url}/metrics)`,
            `  API token  ${ready.apiToken}   (saved: later commands use it)`,
            `  join token ${ready.joinToken}   (for more agents: cube agent --server ${ready.url} --token ...)`,
            `  data       ${dataDir}`,
            'next: cube nodes; cube submit job.yaml; cube jobs; cube events ID; cube logs ID --follow; cube down',
          ].join('\n'),
        );
      },
    );

  program
    .command('down')
    .description('stop the embedded cluster `cube up` started')
    .option('--data-dir <dir>', 'as given to cube up')
    .action(async (flags: { dataDir?: string }) => {
      const dataDir = resolve(flags.dataDir ?? defaultDir());
      const statePath = join(dataDir, 'up.json');
      if (!existsSync(statePath))
        throw new CubeError('INFEASIBLE', `no cluster is up with data in ${dataDir}`, {
          where: { file: statePath },
        });
      const state = upStateSchema.parse(JSON.parse(readFileSync(statePath, 'utf8')));
      const pids = [...state.agents.map((a) => a.pid), state.serverPid].filter(alive);
      for (const pid of pids) process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 10_000;
      while (pids.some(alive) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
      rmSync(state.shmRoot, { recursive: true, force: true });
      rmSync(statePath, { force: true });
      output.out(
        `cube is down (${pids.length} processes stopped); state and logs stay in ${dataDir}`,
      );
    });
}

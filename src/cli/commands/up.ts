import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { z } from 'zod';
import { CubeError } from '../../core/index.ts';
import { writeSecretFileSync } from '../../control/private-files.ts';
import { startEmbeddedAgents } from '../embedded-cluster.ts';
import { ApiClient, type NodeList } from '../api-client.ts';
import { credentialsPath, saveCredentials } from '../credentials.ts';
import { parsePositiveInt } from '../flags.ts';
import { printJson, processOutput, type CliOutput } from '../output.ts';
import { ProgressLine } from '../progress-line.ts';
import { parseNonNegativeInt } from './control.ts';

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

const clusterRecordSchema = z.strictObject({
  dataDir: z.string(),
  url: z.string(),
  serverPid: z.int(),
});
type ClusterRecord = z.infer<typeof clusterRecordSchema>;

/**
 * Where `cube up` records the cluster it started, so a plain `cube down` finds it whatever
 * `--data-dir` it was given: `cluster.json` beside the credentials (`CUBE_CONFIG_DIR`, else
 * ~/.config/cube).
 */
export function clusterRecordPath(): string {
  return join(dirname(credentialsPath()), 'cluster.json');
}

/** The recorded cluster, or null when none is recorded (or the record is unreadable). */
function readClusterRecord(): ClusterRecord | null {
  try {
    return clusterRecordSchema.parse(JSON.parse(readFileSync(clusterRecordPath(), 'utf8')));
  } catch {
    return null;
  }
}

function writeClusterRecord(record: ClusterRecord): void {
  mkdirSync(dirname(clusterRecordPath()), { recursive: true, mode: 0o700 });
  // 0600 and atomic like the credentials beside it: a torn record would strand a cluster.
  writeSecretFileSync(clusterRecordPath(), `${JSON.stringify(record, null, 2)}\n`);
}

/** Clears the record when it names `dataDir` (another cluster's record stays). */
function clearClusterRecord(dataDir: string): void {
  if (readClusterRecord()?.dataDir === dataDir) rmSync(clusterRecordPath(), { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const readyLineSchema = z.object({
  ready: z.literal(true),
  url: z.string(),
  tokensFile: z.string(),
});

/**
 * Waits for `cube server`'s ready line in its log, then reads the tokens from the file it names
 * (the server never prints them: its log is a file others may read).
 */
async function waitForReady(
  logFile: string,
  pid: number,
  timeoutMs: number,
): Promise<{ url: string; apiToken: string; joinToken: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    const line = text.split('\n').find((l) => l.includes('"ready":true'));
    if (line !== undefined) {
      const ready = readyLineSchema.parse(JSON.parse(line));
      // Loaded here, not with the module: the control plane's module brings its HTTP stack,
      // SQLite and Kysely, which `cube up` (the server is another process) and `cube down` do
      // not otherwise need (bench/cli).
      const { readAdminTokens } = await import('../../control/control-plane.ts');
      return { url: ready.url, ...readAdminTokens(dirname(ready.tokensFile)) };
    }
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
    .option('--spares <s>', 'hot spares', parseNonNegativeInt('--spares'), 1)
    .option(
      '--port <port>',
      'control plane port (0: any free one)',
      parseNonNegativeInt('--port'),
      7600,
    )
    .option('--data-dir <dir>', 'state, logs and checkpoints (default ~/.local/state/cube/up)')
    .option(
      '--join-timeout-s <s>',
      'how long to wait for every agent to join',
      parsePositiveInt('--join-timeout-s'),
      120,
    )
    .option('--json', 'print {url, apiToken, joinToken, dataDir, serverPid, agents, nodes}')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ cube up                                   # 4 workers and 1 spare on this machine',
        '  $ cube up --nodes 2 --devices-per-node 2 --port 0 --data-dir /tmp/c',
        '  $ cube down                                 # stops the cluster cube up last started',
      ].join('\n'),
    )
    .action(
      async (flags: {
        nodes: number;
        devicesPerNode: number;
        spares: number;
        port: number;
        dataDir?: string;
        joinTimeoutS: number;
        json?: boolean;
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
        const progress = new ProgressLine({
          mode: ProgressLine.modeFor({
            json: flags.json === true,
            isTty: output === processOutput && process.stderr.isTTY,
          }),
          output,
        });
        mkdirSync(dataDir, { recursive: true, mode: 0o700 });
        const serverLog = join(dataDir, 'server.log');
        const fd = openSync(serverLog, 'w', 0o600);
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
        progress.begin('the control plane to start');
        const ready = await waitForReady(serverLog, server.pid ?? -1, 30_000);
        progress.end(`listening on ${ready.url}`);
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
        // Written before the wait, so `cube down` can stop what started even if the wait fails.
        // It holds the tokens: 0600, written atomically.
        writeSecretFileSync(statePath, `${JSON.stringify(state, null, 2)}\n`);
        saveCredentials({ server: ready.url, token: ready.apiToken });
        writeClusterRecord({ dataDir, url: ready.url, serverPid: state.serverPid });
        const nodes = await waitForAgents(
          new ApiClient({ server: ready.url, token: ready.apiToken }),
          agents.map((a) => a.name),
          { timeoutMs: flags.joinTimeoutS * 1000, progress, dataDir },
        );
        if (flags.json === true) {
          printJson(output, {
            url: ready.url,
            apiToken: ready.apiToken,
            joinToken: ready.joinToken,
            dataDir,
            serverPid: state.serverPid,
            agents: state.agents,
            nodes,
          });
          return;
        }
        output.out(
          [
            `cube is up: ${flags.nodes} worker node${flags.nodes === 1 ? '' : 's'} x ${flags.devicesPerNode} cpu device${flags.devicesPerNode === 1 ? '' : 's'}, ${flags.spares} spare${flags.spares === 1 ? '' : 's'}, all joined`,
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
    .option(
      '--data-dir <dir>',
      'as given to cube up (default: the cluster cube up last started, recorded in ~/.config/cube/cluster.json)',
    )
    .option('--json', 'print {stopped, dataDir}')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ cube up --data-dir /tmp/c && cube down    # down finds /tmp/c by itself',
        '  $ cube down --data-dir /tmp/c',
      ].join('\n'),
    )
    .action(async (flags: { dataDir?: string; json?: boolean }) => {
      let dataDir: string;
      if (flags.dataDir !== undefined) dataDir = resolve(flags.dataDir);
      else {
        const record = readClusterRecord();
        dataDir = record?.dataDir ?? resolve(defaultDir());
        if (record !== null && !alive(record.serverPid)) {
          // Its server is gone (a reboot, a kill): say so and forget it; whatever of it is
          // still running (agents) is stopped below when its state file is still there.
          rmSync(clusterRecordPath(), { force: true });
          output.err(
            `cube: the recorded cluster at ${record.url} (data in ${record.dataDir}) is no longer running (server pid ${record.serverPid} is gone); record ${clusterRecordPath()} cleared`,
          );
        }
      }
      const statePath = join(dataDir, 'up.json');
      if (!existsSync(statePath))
        throw new CubeError('INFEASIBLE', `no cluster is up with data in ${dataDir}`, {
          where: { file: statePath },
          hint: 'pass the --data-dir given to `cube up`',
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
      clearClusterRecord(dataDir);
      if (flags.json === true) printJson(output, { stopped: pids.length, dataDir });
      else
        output.out(
          `cube is down (${pids.length} processes stopped); state and logs stay in ${dataDir}`,
        );
    });
}

type JoinedNode = NodeList['nodes'][number];

/** Waits until a node of each name is ready, showing how many have joined. */
async function waitForAgents(
  api: ApiClient,
  names: readonly string[],
  options: { timeoutMs: number; progress: ProgressLine; dataDir: string },
): Promise<JoinedNode[]> {
  const deadline = Date.now() + options.timeoutMs;
  options.progress.begin(`${names.length} agent${names.length === 1 ? '' : 's'} to join`);
  for (;;) {
    const { nodes } = await api.request<NodeList>('GET', '/nodes');
    const ready = names
      .map((name) => nodes.find((n) => n.name === name && n.state === 'ready'))
      .filter((n): n is JoinedNode => n !== undefined);
    if (ready.length === names.length) {
      options.progress.end('all joined');
      return ready;
    }
    const missing = names.filter((name) => !ready.some((n) => n.name === name));
    options.progress.update(`${ready.length} of ${names.length} joined`);
    if (Date.now() > deadline) {
      options.progress.end('timed out');
      throw new CubeError(
        'INFEASIBLE',
        `${missing.length} agent${missing.length === 1 ? '' : 's'} did not join within ${options.timeoutMs / 1000} s: ${missing.join(', ')}`,
        {
          hint: `see ${join(options.dataDir, 'nodes', missing[0] ?? '', 'agent.log')}; \`cube down\` stops what started`,
        },
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

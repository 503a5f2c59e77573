// The server side of the control-plane benchmark, in its own process so that its CPU can be
// read from /proc/<pid>/stat without the simulated agents' share:
//   cube  <dataDir>   the real ControlPlane (Fastify, SQLite in dataDir, orchestrator loop)
//   bare              the baseline: the same Fastify stack with a heartbeat route that does
//                     nothing but answer `{commands: []}`
// Prints one JSON line `{ready, url, joinToken, apiToken}` and runs until SIGTERM.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { fastify } from 'fastify';
import { ControlPlane } from '../../src/control/control-plane.ts';

const [mode, dataDir, timeoutMs, profileDir] = process.argv.slice(2);

// With a profile directory, SIGUSR2 starts a CPU profile and the next SIGUSR2 writes it: the
// runner brackets its measurement windows with them.
let session: Session | null = null;
if (profileDir !== undefined && profileDir !== '')
  process.on('SIGUSR2', () => {
    void (async () => {
      if (session === null) {
        session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
        return;
      }
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(join(profileDir, `window-${Date.now()}.cpuprofile`), JSON.stringify(profile));
      session.disconnect();
      session = null;
    })();
  });

async function start(): Promise<() => Promise<void>> {
  if (mode === 'cube') {
    if (dataDir === undefined)
      throw new Error('usage: server-process.ts cube <dataDir> [timeoutMs]');
    const cp = await ControlPlane.start({
      dataDir,
      heartbeatIntervalMs: 1000,
      heartbeatTimeoutMs: Number(timeoutMs ?? 30_000),
    });
    process.stdout.write(
      `${JSON.stringify({ ready: true, url: cp.url, joinToken: cp.tokens.joinToken, apiToken: cp.tokens.apiToken })}\n`,
    );
    return () => cp.stop();
  }
  const app = fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
  app.post('/api/v1/agents/:nodeId/heartbeat', () => ({ commands: [] }));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(`${JSON.stringify({ ready: true, url, joinToken: '', apiToken: '' })}\n`);
  return () => app.close();
}

const stop = await start();
process.once('SIGTERM', () => {
  void stop().then(() => process.exit(0));
});

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { CubeError } from '../../core/index.ts';
import { trainerPython } from '../trainer-python.ts';
import { ControlPlane } from '../../control/control-plane.ts';
import type { Event, Job } from '../../control/model/index.ts';
import { rankLogPath } from '../../control/server/app.ts';
import { startEmbeddedAgents, stopEmbeddedAgents } from '../embedded-cluster.ts';
import { parsePositiveInt } from '../flags.ts';
import { printJson, processOutput, type CliOutput } from '../output.ts';
import { ProgressLine } from '../progress-line.ts';
import { lossesByStep, replayFromLogs, type LogReplay } from '../replay-check.ts';
import { formatEvent } from './control.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | null>,
  progress?: ProgressLine,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  progress?.begin(what);
  for (;;) {
    const value = await probe();
    if (value !== null) {
      progress?.end();
      return value;
    }
    if (Date.now() > deadline) {
      progress?.end('timed out');
      throw new CubeError('INFEASIBLE', `demo: timed out waiting for ${what}`);
    }
    await sleep(100);
  }
}

interface DemoFlags {
  nodes: number;
  devicesPerNode: number;
  spares: number;
  steps: number;
  killAt: number;
  keep?: boolean;
  json?: boolean;
}

/** The recovery, measured from the event log alone. */
export interface RecoveryReport {
  readonly killedAtStep: number;
  readonly detectionSeconds: number;
  readonly relaunchSeconds: number;
  readonly restoreSeconds: number | null;
  readonly downtimeSeconds: number;
  readonly restoredStep: number | null;
  readonly levels: Readonly<Record<string, number>>;
  readonly stepsLost: number | null;
  /** Steps rank 0 logged both before the fault and after the restore. */
  readonly replayedSteps: number;
  /**
   * Whether every replayed step gave the same loss bit for bit; null when no step was run
   * again (training resumed exactly where the fault hit), so bit-exactness was not checked.
   */
  readonly replayedIdentical: boolean | null;
  readonly firstDifference: LogReplay['firstDifference'];
}

function ms(at: string): number {
  return Date.parse(`${at}Z`.replace(/ZZ$/, 'Z'));
}

/**
 * Computes the recovery report of the first fault of a job from its events and rank 0's
 * training log (every step's loss: progress samples reach the control plane only once per
 * heartbeat, so they rarely name the same step before and after a restore).
 */
export function recoveryReport(
  events: readonly Event[],
  replay: LogReplay,
  killedAtMs: number,
  killedAtStep: number,
): RecoveryReport {
  const first = (kind: string, after = 0): Event | undefined =>
    events.find((e) => e.kind === kind && ms(e.at) >= after);
  const fault = first('fault-detected', killedAtMs - 1);
  const relaunch = events.find((e) => e.kind === 'job-scheduled' && (e.attempt ?? 0) >= 1);
  const restored = events.filter(
    (e): e is Extract<Event, { kind: 'job-restored' }> =>
      e.kind === 'job-restored' && (e.attempt ?? 0) >= 1,
  );
  const resumed = first('job-resumed', killedAtMs);
  const faultMs = fault === undefined ? killedAtMs : ms(fault.at);
  const relaunchMs = relaunch === undefined ? faultMs : ms(relaunch.at);
  const restoredMs = restored.length === 0 ? null : Math.max(...restored.map((e) => ms(e.at)));
  const resumedMs = resumed === undefined ? Date.now() : ms(resumed.at);
  const levels: Record<string, number> = {};
  for (const e of restored) levels[e.data.level] = (levels[e.data.level] ?? 0) + 1;
  const restoredStep = restored[0]?.data.step ?? null;
  // The log knows the last step finished before the kill; the progress poll only a lower bound.
  const lastStep = Math.max(killedAtStep, replay.lastStepBeforeFault ?? killedAtStep);
  return {
    killedAtStep: lastStep,
    detectionSeconds: (faultMs - killedAtMs) / 1000,
    relaunchSeconds: (relaunchMs - faultMs) / 1000,
    restoreSeconds: restoredMs === null ? null : (restoredMs - relaunchMs) / 1000,
    downtimeSeconds: (resumedMs - killedAtMs) / 1000,
    restoredStep,
    levels,
    stepsLost: restoredStep === null ? null : Math.max(0, lastStep - restoredStep),
    replayedSteps: replay.replayedSteps,
    replayedIdentical: replay.replayedSteps === 0 ? null : replay.firstDifference === null,
    firstDifference: replay.firstDifference,
  };
}

/** The report's line about the replayed steps: never claims bit-exactness when none was run again. */
export function replayLine(report: RecoveryReport): string {
  if (report.replayedSteps === 0 || report.replayedIdentical === null)
    return '  replayed steps  none: no step was run again; bit-exactness not checked';
  const steps = `${report.replayedSteps} step${report.replayedSteps === 1 ? '' : 's'} run again from the checkpoint`;
  const difference = report.firstDifference;
  return difference === null
    ? `  replayed steps  ${steps}: losses identical bit for bit to the run before the fault`
    : `  replayed steps  ${steps}: losses DIFFER from step ${difference.step} (${difference.before} before, ${difference.after} after)`;
}

/** Launch to training of the first attempt (job-scheduled to job-running), from the events. */
export function coldStartSeconds(events: readonly Event[]): number | null {
  const scheduled = events.find((e) => e.kind === 'job-scheduled' && (e.attempt ?? 0) === 0);
  const running = events.find((e) => e.kind === 'job-running' && (e.attempt ?? 0) === 0);
  return scheduled === undefined || running === undefined
    ? null
    : (ms(running.at) - ms(scheduled.at)) / 1000;
}

/** `cube demo`: an embedded cluster, a real training job, a node killed, the recovery measured. */
export function registerDemoCommand(program: Command, output: CliOutput): void {
  program
    .command('demo')
    .description(
      'embedded cluster + real training job + a node killed mid-run + automatic recovery, measured',
    )
    .option('--nodes <n>', 'worker nodes', parsePositiveInt('--nodes'), 2)
    .option(
      '--devices-per-node <d>',
      'ranks per node (CPU stand-ins)',
      parsePositiveInt('--devices-per-node'),
      1,
    )
    .option('--spares <s>', 'hot spares', (v) => Number(v), 1)
    .option('--steps <n>', 'training steps', parsePositiveInt('--steps'), 80)
    .option(
      '--kill-at <step>',
      'kill a node once training passed this step and L2 is at most one checkpoint behind',
      parsePositiveInt('--kill-at'),
      30,
    )
    .option('--keep', 'keep the data directory for inspection')
    .option(
      '--json',
      'print only {job, state, restarts, heartbeatTimeoutSeconds, coldStartSeconds, recovery}',
    )
    .action(async (flags: DemoFlags) => {
      const python = trainerPython('the demo');
      if (flags.killAt >= flags.steps)
        throw new CubeError(
          'BAD_FLAG',
          `--kill-at (${flags.killAt}) must be below --steps (${flags.steps})`,
          { where: { field: '--kill-at' } },
        );
      const dataDir = mkdtempSync(join(tmpdir(), 'cube-demo-'));
      const shmRoot = mkdtempSync(join('/dev/shm', 'cube-demo-'));
      const progress = new ProgressLine({
        mode: ProgressLine.modeFor({
          json: flags.json === true,
          isTty: output === processOutput && process.stderr.isTTY,
        }),
        output,
      });
      const say = (line: string): void => {
        if (flags.json !== true) progress.print(line);
      };
      say(`cube demo: data in ${dataDir}`);
      const cp = await ControlPlane.start({
        dataDir,
        // The demo kills a node on purpose.
        allowFaultInjection: true,
        heartbeatTimeoutMs: 3000,
        heartbeatIntervalMs: 500,
        tickMs: 200,
      });
      say(`control plane on ${cp.url}`);
      const agents = startEmbeddedAgents({
        server: cp.url,
        joinToken: cp.tokens.joinToken,
        dataDir: join(dataDir, 'nodes'),
        shmRoot,
        nodes: flags.nodes,
        devicesPerNode: flags.devicesPerNode,
        spares: flags.spares,
        heartbeatMs: 500,
      });
      const unsubscribe = cp.store.subscribe((events) => {
        for (const e of events) if (e.kind !== 'rank-running') say(`  ${formatEvent(e)}`);
      });
      try {
        await until(
          'the nodes to join',
          60_000,
          async () => {
            const ready = (await cp.store.listNodes()).filter((n) => n.state === 'ready');
            return ready.length >= agents.length ? ready : null;
          },
          progress,
        );
        say(`${flags.nodes} worker nodes and ${flags.spares} spare joined`);
        const job = await cp.store.createJob({
          name: 'demo-gpt',
          command: [
            python,
            'examples/gpt/train.py',
            '--steps',
            String(flags.steps),
            '--layers',
            '2',
            '--hidden',
            '64',
            '--heads',
            '2',
            '--seq-len',
            '32',
            '--batch',
            '4',
            '--seed',
            '5',
          ],
          workingDir: repoRoot,
          env: { OMP_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
          ranks: { nodes: flags.nodes, devicesPerNode: flags.devicesPerNode },
          deviceType: 'cpu',
          priority: 0,
          // L1 keeps 3: the step the kill waits for at L2 (below) stays in the survivors' memory
          // while one more checkpoint commits before the kill lands.
          checkpoint: { everySteps: 5, l3Every: 4, keep: { L1: 3, L2: 2, L3: 3 } },
          restart: { maxRestarts: 3, backoffSeconds: 1 },
          faults: { heartbeatTimeoutSeconds: 3, hangTimeoutSeconds: 120 },
        });
        say(
          `submitted job ${job.id}: a GPT on the KJV text, ${flags.nodes * flags.devicesPerNode} ranks, checkpoints every 5 steps (L1 + L2, L3 every 4th)`,
        );
        const rank0Log = (attempt: number): string => {
          try {
            return readFileSync(rankLogPath(dataDir, job.id, attempt, 0), 'utf8');
          } catch {
            return '';
          }
        };
        const victimRank = flags.nodes * flags.devicesPerNode - 1;
        const killedAtStep = await until(
          'training to pass the kill step',
          300_000,
          async () => {
            // Rank 0's log names every step as it ends; progress samples arrive only once per
            // heartbeat, and a kill that late can land on a checkpoint step, leaving nothing
            // to replay.
            const logged = [...lossesByStep(rank0Log(0)).keys()];
            const p = await cp.store.listProgress(job.id, { rank: 0, limit: 1_000_000 });
            const last = Math.max(-1, p.at(-1)?.step ?? -1, ...logged);
            // The spare that takes the killed node's rank restores it from a peer's L2 replica,
            // and the surviving ranks restore the same step from their L1. When the steps
            // outrun the replication (torch 2.15 here runs a dozen in a second), L1 retention
            // drops the steps L2 still holds: a kill then leaves no step every rank can restore,
            // and the job starts over from step 0. So the kill also waits until L2 is at most
            // one checkpoint behind L1.
            const committed = await cp.store.listEvents({
              jobId: job.id,
              kinds: ['checkpoint-committed'],
            });
            const newest = (level: string): number =>
              Math.max(
                -1,
                ...committed.flatMap((e) =>
                  e.kind === 'checkpoint-committed' && e.data.level === level ? [e.data.step] : [],
                ),
              );
            const l1 = newest('L1');
            const l2 = newest('L2');
            const replicated = l2 >= 0 && l2 >= l1 - 5;
            if (last >= 0)
              progress.update(
                `step ${last} of ${flags.killAt}${replicated ? '' : `, L2 at step ${l2 < 0 ? '-' : l2} behind L1 at ${l1}`}`,
              );
            return last >= flags.killAt && replicated ? last : null;
          },
          progress,
        );
        const running = (await cp.store.getJob(job.id)) as Job;
        const victim = running.placement?.find((p) => p.rank === victimRank)?.nodeId ?? '';
        const victimName = (await cp.store.getNode(victim))?.name ?? victim;
        const killedAtMs = Date.now();
        say(
          `\n*** killing node ${victimName} (its agent and its ranks) at step ${killedAtStep} ***\n`,
        );
        cp.orchestrator.injectFault(victim, 'kill-node');
        const final = await until(
          'the job to finish',
          600_000,
          async () => {
            const j = await cp.store.getJob(job.id);
            if (j === null) return null;
            if (['succeeded', 'failed', 'cancelled'].includes(j.state)) return j;
            // Only states still being waited on: the end line reports the outcome.
            progress.update(j.state);
            return null;
          },
          progress,
        );
        const events = await cp.store.listEvents({ jobId: job.id });
        const replay = replayFromLogs(
          rank0Log(0),
          Array.from({ length: final.restarts }, (_, i) => rank0Log(i + 1)),
        );
        const report = recoveryReport(events, replay, killedAtMs, killedAtStep);
        if (flags.json === true) {
          printJson(output, {
            job: final.id,
            state: final.state,
            reason: final.reason,
            restarts: final.restarts,
            heartbeatTimeoutSeconds: 3,
            coldStartSeconds: coldStartSeconds(events),
            recovery: report,
          });
          if (final.state !== 'succeeded' || report.replayedIdentical === false)
            throw new CubeError(
              'INFEASIBLE',
              `demo: the job ${final.state === 'succeeded' ? 'replayed steps with different losses' : final.state}`,
            );
          return;
        }
        const levels = Object.entries(report.levels)
          .map(([l, n]) => `${n} rank${n === 1 ? '' : 's'} from ${l}`)
          .join(', ');
        say(
          [
            '',
            `job ${final.id} ${final.state}${final.reason === null ? '' : ` (${final.reason})`} after ${final.restarts} restart${final.restarts === 1 ? '' : 's'}`,
            "recovery (from the event log and rank 0's log):",
            `  detection       ${report.detectionSeconds.toFixed(2)} s (heartbeat timeout 3 s)`,
            `  relaunch        ${report.relaunchSeconds.toFixed(2)} s (cordon, spare taken, gang relaunched)`,
            `  restore         ${report.restoreSeconds === null ? '-' : `${report.restoreSeconds.toFixed(2)} s`} (step ${report.restoredStep ?? '-'}: ${levels || '-'})`,
            `  downtime        ${report.downtimeSeconds.toFixed(2)} s (kill to training again)`,
            `  steps lost      ${report.stepsLost ?? '-'} (rank 0 had finished step ${report.killedAtStep}, resumed from ${report.restoredStep ?? '-'})`,
            replayLine(report),
            '',
            'try next:',
            '  npx cube up --nodes 4 --spares 1      # a cluster that stays up; then cube submit / jobs / events / logs',
            flags.keep === true
              ? `  npx cube ckpt ls ${join(dataDir, 'l3')}   # the durable checkpoints of this run`
              : '  npx cube demo --keep --kill-at 40   # keep the data and inspect it with cube ckpt ls',
          ].join('\n'),
        );
        if (final.state !== 'succeeded' || report.replayedIdentical === false) process.exitCode = 1;
      } finally {
        progress.end('stopped');
        unsubscribe();
        await stopEmbeddedAgents(agents, shmRoot);
        await cp.stop();
        if (flags.keep !== true) rmSync(dataDir, { recursive: true, force: true });
      }
    });
}

// Metrics end to end, with real processes on loopback: a control plane, two `cube agent`
// processes (each with its checkpoint daemon) serving /metrics behind a bearer token, and a real
// PyTorch job that reports progress and checkpoints to L1, L2 and L3. Every scrape goes through
// `promtool check metrics`; the Grafana dashboard may query only what these scrapes declare.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { JobStateSchema, validateJobSpec } from '../../src/control/model/index.ts';
import { python, repoRoot, tinyModelArgs } from '../python/launcher.ts';
import { until } from '../support/test-cluster.ts';
import { find, promtoolFindings, seriesNames, value } from './metrics-text.ts';

const STEPS = 12;
const metricsToken = 'metrics-token-0123456789abcdef';

interface Agent {
  readonly name: string;
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  metrics: string | null;
}

let dataDir: string;
let shmRoot: string;
let cp: ControlPlane;
const agents: Agent[] = [];
/** The control plane's /metrics before any node joined or any job ran. */
let controlAtStart: string;
/** An agent's /metrics before any job ran. */
let agentAtStart: string;

async function scrape(
  url: string,
  token: string | null,
): Promise<{ status: number; text: string }> {
  const res = await fetch(url, {
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
  });
  return { status: res.status, text: await res.text() };
}

async function controlMetrics(): Promise<string> {
  const r = await scrape(`${cp.url}/metrics`, cp.tokens.apiToken);
  assert.equal(r.status, 200, r.text);
  return r.text;
}

async function agentMetrics(agent: Agent): Promise<string> {
  const r = await scrape(`http://${agent.metrics ?? ''}/metrics`, metricsToken);
  assert.equal(r.status, 200, r.text);
  return r.text;
}

function spawnAgent(name: string, server: string, tokenFile: string): Agent {
  const home = join(dataDir, 'nodes', name);
  const l1 = join(shmRoot, name);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  mkdirSync(l1, { recursive: true, mode: 0o700 });
  const child = spawn(
    process.execPath,
    [
      join(repoRoot, 'bin/cube.js'),
      'agent',
      '--server',
      cp.url,
      '--token',
      cp.tokens.joinToken,
      '--name',
      name,
      '--devices',
      'cpu:1',
      '--labels',
      `server=${server},superNode=sn0`,
      '--data-dir',
      home,
      '--l1',
      l1,
      '--heartbeat-ms',
      '500',
      '--metrics-listen',
      '127.0.0.1:0',
      '--metrics-token-file',
      tokenFile,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const agent: Agent = { name, child, stdout: '', stderr: '', metrics: null };
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    agent.stdout += c;
    const joined = /"metrics":"([^"]+)"/.exec(agent.stdout);
    if (joined !== null) agent.metrics = joined[1] ?? null;
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (agent.stderr += c));
  return agent;
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cube-metrics-'));
  shmRoot = mkdtempSync(join('/dev/shm', 'cube-metrics-'));
  cp = await ControlPlane.start({
    dataDir,
    heartbeatTimeoutMs: 3000,
    heartbeatIntervalMs: 500,
    tickMs: 200,
  });
  controlAtStart = await controlMetrics();
  const tokenFile = join(dataDir, 'metrics-token');
  writeFileSync(tokenFile, `${metricsToken}\n`, { mode: 0o600 });
  agents.push(spawnAgent('node-0', 'srv0', tokenFile), spawnAgent('node-1', 'srv1', tokenFile));
  await until('both agents to join and listen for metrics', 60_000, async () => {
    const ready = (await cp.store.listNodes()).filter((n) => n.state === 'ready').length;
    return ready === 2 && agents.every((a) => a.metrics !== null) ? true : null;
  });
  agentAtStart = await agentMetrics(agents[0] as Agent);
});

after(async () => {
  await Promise.all(
    agents.map(
      (a) =>
        new Promise<void>((resolve) => {
          if (a.child.exitCode !== null || a.child.signalCode !== null) return resolve();
          const timer = setTimeout(() => a.child.kill('SIGKILL'), 5000);
          a.child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          a.child.kill('SIGTERM');
        }),
    ),
  );
  await cp?.stop();
  rmSync(shmRoot, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

test('labelled series are there at zero before their first event, on the control plane and on an agent', () => {
  for (const state of JobStateSchema.options)
    assert.equal(value(controlAtStart, 'cube_jobs', { state }), 0, `cube_jobs{state=${state}}`);
  for (const state of ['ready', 'cordoned', 'down', 'left'])
    for (const role of ['worker', 'spare'])
      assert.equal(value(controlAtStart, 'cube_nodes', { state, role }), 0);
  for (const cause of ['rank-exit', 'heartbeat-timeout', 'hang', 'probe-failed', 'device-failed'])
    assert.equal(value(controlAtStart, 'cube_faults_total', { cause }), 0, cause);
  assert.equal(
    value(controlAtStart, 'cube_fault_detection_seconds_count', { cause: 'hang' }),
    0,
    'histograms by cause start at zero too',
  );
  const build = find(controlAtStart, 'cube_build_info');
  assert.equal(build.length, 1);
  assert.equal(build[0]?.value, 1);
  assert.match(build[0]?.labels.version ?? '', /^\d+\.\d+\.\d+/);
  assert.match(build[0]?.labels.commit ?? '', /^([0-9a-f]{40}|unknown)$/);
  assert.equal(build[0]?.labels.node_version, process.version);

  assert.equal(value(agentAtStart, 'cube_ckpt_daemon_up'), 1, 'the agent reads its daemon');
  for (const kind of ['l1-commit', 'replication', 'persist', 'fenced'])
    assert.equal(value(agentAtStart, 'cube_ckpt_failures_total', { kind }), 0, kind);
  assert.equal(value(agentAtStart, 'cube_ckpt_replicated_bytes_total'), 0);
  assert.equal(value(agentAtStart, 'cube_ckpt_queue_depth', { state: 'queued' }), 0);
  assert.equal(value(agentAtStart, 'cube_agent_ranks', { state: 'running' }), 0);
  assert.equal(find(agentAtStart, 'cube_build_info').length, 1);
});

test("the agent's /metrics refuses a request without the bearer token or with a wrong one", async () => {
  const url = `http://${(agents[0] as Agent).metrics ?? ''}`;
  const none = await fetch(`${url}/metrics`);
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
  assert.doesNotMatch(await none.text(), /cube_/);
  assert.equal((await scrape(`${url}/metrics`, 'x'.repeat(metricsToken.length))).status, 401);
  assert.equal((await scrape(`${url}/metrics`, `${metricsToken}x`)).status, 401);
  assert.equal((await scrape(`${url}/other`, metricsToken)).status, 404);
  assert.equal((await scrape(`${url}/metrics`, metricsToken)).status, 200);
});

test("a training job's step, loss, tokens/s, checkpoints and restarts show per job; every scrape passes promtool; the Grafana dashboard queries only served metrics", async () => {
  for (const [what, text] of [
    ['control plane at start', controlAtStart],
    ['agent at start', agentAtStart],
  ] as const)
    assert.equal(promtoolFindings(text), '', `promtool on the ${what}`);

  const job = await cp.store.createJob(
    validateJobSpec({
      name: 'metrics-e2e',
      command: [python, 'examples/gpt/train.py', '--steps', String(STEPS), ...tinyModelArgs],
      workingDir: repoRoot,
      env: { OMP_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
      ranks: { nodes: 2, devicesPerNode: 1 },
      deviceType: 'cpu',
      checkpoint: { everySteps: 2, l3Every: 1 },
      restart: { maxRestarts: 0 },
    }),
  );
  // While it runs: its series appear, and the scrape still passes promtool.
  const during = await until('the job to report step 4', 240_000, async () => {
    const text = await controlMetrics();
    return find(text, 'cube_job_step', { job_id: job.id }).some((s) => s.value >= 4) ? text : null;
  });
  assert.equal(promtoolFindings(during), '', 'promtool on the control plane during the job');
  const final = await until('the job to end', 240_000, async () => {
    const j = await cp.store.getJob(job.id);
    return j !== null && ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : null;
  });
  assert.equal(final.state, 'succeeded', final.reason ?? '');
  // Replication and persistence run behind the commits: wait until L3 has the last step.
  const control = await until('the last step at L3', 60_000, async () => {
    const text = await controlMetrics();
    const l3 = find(text, 'cube_job_checkpoint_step', { job_id: job.id, level: 'L3' });
    // cube_jobs is refreshed by the control loop's next pass.
    const done = find(text, 'cube_jobs', { state: 'succeeded' })[0]?.value === 1;
    return l3[0]?.value === STEPS && done ? text : null;
  });

  const labels = { job_id: job.id, job_name: 'metrics-e2e' };
  assert.equal(value(control, 'cube_job_step', labels), STEPS);
  const loss = value(control, 'cube_job_loss', labels);
  assert.ok(Number.isFinite(loss) && loss > 0, `loss ${loss}`);
  assert.ok(value(control, 'cube_job_tokens_per_second', labels) > 0);
  assert.equal(value(control, 'cube_job_restarts_total', labels), 0);
  for (const level of ['L1', 'L2', 'L3']) {
    assert.equal(value(control, 'cube_job_checkpoint_step', { ...labels, level }), STEPS, level);
    const age = value(control, 'cube_job_checkpoint_age_seconds', { ...labels, level });
    assert.ok(age >= 0 && age < 120, `${level} checkpoint age ${age}`);
  }
  assert.equal(value(control, 'cube_jobs', { state: 'succeeded' }), 1);
  assert.equal(value(control, 'cube_jobs', { state: 'running' }), 0, 'zero series stay');
  assert.equal(value(control, 'cube_nodes', { state: 'ready', role: 'worker' }), 2);
  assert.equal(promtoolFindings(control), '', 'promtool on the control plane after the job');

  const scrapes = await Promise.all(agents.map((a) => agentMetrics(a)));
  let replicated = 0;
  let persisted = 0;
  let newestL1 = 0;
  for (const [i, text] of scrapes.entries()) {
    assert.equal(promtoolFindings(text), '', `promtool on agent ${i} after the job`);
    replicated += value(text, 'cube_ckpt_replicated_bytes_total');
    persisted += value(text, 'cube_ckpt_persisted_bytes_total');
    assert.ok(value(text, 'cube_ckpt_replication_seconds_total') > 0, 'replication took time');
    assert.ok(value(text, 'cube_ckpt_persist_seconds_total') > 0, 'persistence took time');
    assert.ok(value(text, 'cube_ckpt_held_bytes', { level: 'L1' }) > 0, 'L1 holds shards');
    assert.ok(value(text, 'cube_ckpt_held_bytes', { level: 'L2' }) > 0, "L2 holds a peer's");
    assert.ok(value(text, 'cube_ckpt_held_bytes', { level: 'L3' }) > 0, 'L3 holds shards');
    for (const kind of ['l1-commit', 'replication', 'persist', 'fenced'])
      assert.equal(value(text, 'cube_ckpt_failures_total', { kind }), 0, kind);
    newestL1 += value(text, 'cube_ckpt_newest_checkpoint_bytes', { job_id: job.id, level: 'L1' });
  }
  // Each node replicated and persisted its rank's shard of every checkpoint (6 of them).
  assert.ok(replicated >= 6 * 2 * 1000, `replicated ${replicated} bytes`);
  assert.ok(persisted >= replicated / 2, `persisted ${persisted} bytes`);
  assert.ok(newestL1 > 1000, `the newest L1 checkpoint holds ${newestL1} bytes`);

  // The dashboard: every metric its queries name is one these scrapes declare.
  const served = new Set([...seriesNames(control), ...scrapes.flatMap((t) => [...seriesNames(t)])]);
  const dashboard = JSON.parse(
    readFileSync(join(repoRoot, 'examples/grafana/cube.json'), 'utf8'),
  ) as unknown;
  const exprs = promqlExpressions(dashboard);
  assert.ok(exprs.length >= 12, `${exprs.length} queries`);
  for (const expr of exprs) {
    const names = metricNames(expr);
    assert.ok(names.length > 0, `"${expr}" names no metric`);
    for (const name of names) assert.ok(served.has(name), `"${expr}" queries ${name}, not served`);
  }
  for (const wanted of [
    'cube_job_step',
    'cube_job_loss',
    'cube_job_tokens_per_second',
    'cube_job_checkpoint_age_seconds',
    'cube_recovery_seconds_bucket',
    'cube_ckpt_replicated_bytes_total',
    'cube_nodes',
  ])
    assert.ok(
      exprs.some((e) => metricNames(e).includes(wanted)),
      `the dashboard shows ${wanted}`,
    );
});

/** Every `expr` of a Grafana dashboard's panels, and the queries of its query variables. */
function promqlExpressions(dashboard: unknown): string[] {
  const exprs: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node !== null && typeof node === 'object')
      for (const [k, v] of Object.entries(node)) {
        if (k === 'expr' && typeof v === 'string') exprs.push(v);
        else walk(v);
      }
  };
  const d = dashboard as {
    panels?: unknown;
    templating?: { list?: { type?: string; query?: { query?: unknown } | string }[] };
  };
  walk(d.panels);
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    if (typeof q === 'string') exprs.push(q);
  }
  return exprs;
}

const promqlWords = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression (or a Grafana `label_values(...)` query) reads: its
 * identifiers less label matchers, strings, ranges, grouping clauses, functions and keywords.
 */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
    .replace(/\$\{?\w+\}?/g, '');
  const names: string[] = [];
  for (const m of stripped.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const word = m[1] ?? '';
    if (m[2] !== undefined || promqlWords.has(word.toLowerCase())) continue;
    // label_values(metric, label): the label is the second argument.
    if (/label_values\s*\(/.test(expr) && stripped.includes(`, ${word}`)) continue;
    names.push(word);
  }
  return names;
}

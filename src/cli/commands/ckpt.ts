import type { Command } from 'commander';
import { CubeError, unknownIdError } from '../../core/index.ts';
import {
  fileKey,
  findStalledLevels,
  holdingsFromStatuses,
  levels,
  levelSchema,
  openCheckpointDir,
  planRestore,
  readRecord,
  readSafetensorsHeaderFrom,
  scanJob,
  selectJob,
  selectRestore,
  sourceLevel,
  verifyStep,
  type CheckpointDir,
  type Level,
  type ObjectCheck,
  type StalledLevel,
  type StepStatus,
  type StepVerification,
} from '../../ckpt/index.ts';
import { printJson, renderTable, type CliOutput } from '../output.ts';

interface CommonFlags {
  readonly json?: boolean;
  readonly job?: string;
  readonly level?: Level;
}

function parseCount(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
      throw new CubeError('BAD_FLAG', `${flag} must be a non-negative integer, got "${value}"`, {
        where: { field: flag },
      });
    return n;
  };
}

function parseLevel(value: string): Level {
  const parsed = levelSchema.safeParse(value);
  if (!parsed.success)
    throw new CubeError('BAD_FLAG', `--level must be L1, L2 or L3, got "${value}"`, {
      where: { field: '--level', allowed: [...levels] },
    });
  return parsed.data;
}

function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

async function openDir(
  dir: string,
  flags: CommonFlags,
): Promise<{ cd: CheckpointDir; job: string | null }> {
  const cd = await openCheckpointDir(dir, flags.level === undefined ? {} : { level: flags.level });
  return { cd, job: selectJob(cd, flags.job) };
}

/** Every step's status at every level root of the directory, keyed by step. */
async function statusesByStep(
  cd: CheckpointDir,
  job: string,
): Promise<Map<number, Map<Level, StepStatus>>> {
  const byStep = new Map<number, Map<Level, StepStatus>>();
  for (const { level, store } of cd.roots)
    for (const status of await scanJob(store, job, { level })) {
      const row = byStep.get(status.step) ?? new Map<Level, StepStatus>();
      row.set(level, status);
      byStep.set(status.step, row);
    }
  return new Map([...byStep.entries()].sort((a, b) => a[0] - b[0]));
}

/** The levels of the rows that stopped committing (stalled-levels.ts). */
function stalledLevels(rows: ReadonlyMap<number, ReadonlyMap<Level, StepStatus>>): StalledLevel[] {
  return findStalledLevels([...rows.values()].flatMap((row) => [...row.values()]));
}

function stalledJson(stalled: readonly StalledLevel[]): Record<string, unknown>[] {
  return stalled.map((s) => ({
    level: s.level,
    newestCommitted: s.newestCommitted,
    pendingSteps: s.pendingSteps,
    newestElsewhere: s.newestElsewhere,
    lagSteps: s.lagSteps,
    intervalSteps: s.intervalSteps,
    message: s.message,
  }));
}

/** One copy's bytes: each rank's shard size, from whichever level has it. */
function copyBytes(row: ReadonlyMap<Level, StepStatus>): number {
  const byRank = new Map<number, number>();
  for (const status of row.values())
    for (const shard of status.shards)
      if (!byRank.has(shard.rank)) byRank.set(shard.rank, shard.bytes);
  return [...byRank.values()].reduce((a, b) => a + b, 0);
}

/**
 * The step's timeline: the highest any level gives (levels can disagree when a run restarted
 * from an older step and one level still holds the abandoned one), or null when none says.
 */
function rowTimeline(row: ReadonlyMap<Level, StepStatus>): number | null {
  const found = [...row.values()].map((s) => s.timeline).filter((t): t is number => t !== null);
  return found.length === 0 ? null : Math.max(...found);
}

/** `1`, or `0/1` (per level, in level order) when the levels hold different timelines. */
function timelineCell(row: ReadonlyMap<Level, StepStatus>): string {
  const found = levels
    .map((l) => row.get(l)?.timeline)
    .filter((t): t is number => t !== null && t !== undefined);
  if (found.length === 0) return '-';
  return new Set(found).size === 1 ? String(found[0]) : found.join('/');
}

function cell(status: StepStatus | undefined): string {
  if (status === undefined) return '-';
  const of = `${status.ranks.length}/${status.worldSize ?? '?'}`;
  switch (status.state) {
    case 'complete':
      return `${of} complete`;
    case 'partial':
      return `${of} partial`;
    case 'uncommitted':
      return `${of} no manifest`;
    case 'invalid':
      return 'INVALID';
    default:
      return status.state satisfies never;
  }
}

async function ls(dir: string, flags: CommonFlags, output: CliOutput): Promise<void> {
  const { cd, job } = await openDir(dir, flags);
  const rows =
    job === null ? new Map<number, Map<Level, StepStatus>>() : await statusesByStep(cd, job);
  const stalled = stalledLevels(rows);
  if (flags.json === true) {
    // The documented shape ({steps}); `cube ckpt verify --json` carries the stalled levels.
    printJson(output, {
      steps: [...rows.entries()].map(([step, row]) => ({
        step,
        levels: Object.fromEntries(levels.map((l) => [l, row.get(l)?.ranks.length ?? 0])),
        complete: Object.fromEntries(levels.map((l) => [l, row.get(l)?.complete ?? false])),
        bytes: copyBytes(row),
        timeline: rowTimeline(row),
        timelines: Object.fromEntries(levels.map((l) => [l, row.get(l)?.timeline ?? null])),
      })),
    });
    return;
  }
  const lines = [
    `${job === null ? 'no checkpoints' : `job ${job}`} in ${cd.path}`,
    ...cd.roots.map((r) => `  ${r.level}  ${r.store.root}`),
    '',
  ];
  const shown = levels.filter((l) => cd.roots.some((r) => r.level === l));
  lines.push(
    renderTable(
      ['step', 'timeline', ...shown, 'size'],
      [...rows.entries()].map(([step, row]) => [
        step,
        timelineCell(row),
        ...shown.map((l) => cell(row.get(l))),
        humanBytes(copyBytes(row)),
      ]),
    ),
  );
  const problems = [...rows.values()].flatMap((row) =>
    [...row.values()].flatMap((s) =>
      s.problems.map((p) => `  step ${s.step} ${s.level}: ${p.message}`),
    ),
  );
  if (problems.length > 0) lines.push('', 'problems:', ...problems);
  if (stalled.length > 0)
    lines.push(
      '',
      'stalled (a level that stopped committing; `cube ckpt verify` fails on it):',
      ...stalled.map((s) => `  ${s.message}`),
    );
  output.out(lines.join('\n'));
}

function checkJson(check: ObjectCheck & { readonly rank: number }): Record<string, unknown> {
  return {
    rank: check.rank,
    file: check.file,
    result: check.kind,
    ...(check.kind === 'ok'
      ? { bytes: check.bytes, xxh3: check.xxh3 }
      : { message: check.message }),
  };
}

async function verify(
  dir: string,
  flags: CommonFlags & { readonly step?: number },
  output: CliOutput,
): Promise<void> {
  const { cd, job } = await openDir(dir, flags);
  const rows =
    job === null ? new Map<number, Map<Level, StepStatus>>() : await statusesByStep(cd, job);
  if (flags.step !== undefined && !rows.has(flags.step))
    throw unknownIdError('step', String(flags.step), [...rows.keys()].map(String), {
      file: cd.path,
      field: '--step',
    });
  const results: StepVerification[] = [];
  for (const [step, row] of rows) {
    if (flags.step !== undefined && step !== flags.step) continue;
    for (const { level, store } of cd.roots)
      if (row.has(level) && job !== null)
        results.push(await verifyStep(store, job, step, { level }));
  }

  // The step a restore on this node would pick, using these results as the checks.
  let restore: {
    step: number;
    timeline: number;
    sources: { rank: number; level: Level }[];
  } | null = null;
  if (job !== null) {
    const statuses = [...rows.values()].flatMap((row) => [...row.values()]);
    const worldSize = statuses
      .filter((s) => s.manifest !== null)
      .sort((a, b) => b.step - a.step)[0]?.worldSize;
    if (worldSize !== undefined && worldSize !== null) {
      const plan = planRestore({
        job,
        worldSize,
        rankNodes: Array.from({ length: worldSize }, () => 'local'),
        holdings: holdingsFromStatuses(statuses, { node: 'local' }),
      });
      const selection = await selectRestore(plan, {
        check: (source) => {
          const found = results
            .find(
              (r) =>
                r.step === source.step &&
                r.level === sourceLevel(source) &&
                r.timeline === source.timeline,
            )
            ?.shards.find((s) => s.rank === source.shard.rank);
          return Promise.resolve(
            found ?? {
              kind: 'missing',
              file: source.shard.file,
              message: `${source.shard.file}: not verified`,
            },
          );
        },
      });
      if (selection.kind === 'selected')
        restore = {
          step: selection.step,
          timeline: selection.timeline,
          sources: selection.ranks.map((r) => ({ rank: r.rank, level: sourceLevel(r.source) })),
        };
    }
  }

  const bad = results.filter((r) => !r.ok);
  // Only a whole-directory verify judges the cadence; one step says nothing about it.
  const stalled = flags.step === undefined ? stalledLevels(rows) : [];
  if (flags.json === true)
    printJson(output, {
      ok: bad.length === 0 && stalled.length === 0,
      job,
      stalled: stalledJson(stalled),
      checked: results.map((r) => ({
        step: r.step,
        level: r.level,
        location: r.location,
        state: r.state,
        timeline: r.timeline,
        ok: r.ok,
        shards: r.shards.map(checkJson),
        problems: r.problems.map((p) => ({ kind: p.kind, file: p.file, message: p.message })),
      })),
      restore,
    });
  else {
    const lines: string[] = [];
    for (const r of results) {
      const head = `step ${r.step} ${r.level}${r.timeline === null ? '' : ` timeline ${r.timeline}`}`;
      const shards = `${r.shards.length} shard${r.shards.length === 1 ? '' : 's'}`;
      // An uncommitted step is never restored; its recorded shards are checked all the same.
      const note = r.state === 'uncommitted' ? ', no manifest: not a checkpoint yet' : '';
      if (r.ok) lines.push(`${head}: ok (${shards}${note})`);
      else {
        lines.push(`${head}: BAD${note}`);
        for (const p of r.problems) lines.push(`  ${p.message}`);
        for (const s of r.shards) if (s.kind !== 'ok') lines.push(`  rank ${s.rank}: ${s.message}`);
      }
    }
    lines.push(
      restore === null
        ? 'restore: no step has a verified shard for every rank'
        : `restore would choose step ${restore.step} timeline ${restore.timeline} (${restore.sources.map((s) => `rank ${s.rank} from ${s.level}`).join(', ')})`,
    );
    for (const s of stalled) lines.push(s.message);
    output.out(lines.join('\n'));
  }
  if (bad.length > 0) {
    const files = bad.flatMap((r) => [
      ...r.problems.map((p) => p.file),
      ...r.shards.filter((s) => s.kind !== 'ok').map((s) => s.file),
    ]);
    throw new CubeError(
      'CORRUPT_DATA',
      `${bad.length} checkpoint${bad.length === 1 ? '' : 's'} failed verification: ${[...new Set(files)].join(', ')}`,
      {
        where: { file: files[0] ?? cd.path },
        hint: 'a restore skips these and falls back to the next source or the next newest step',
      },
    );
  }
  if (stalled.length > 0)
    throw new CubeError(
      'STORAGE_FAILED',
      `${stalled.map((s) => s.level).join(', ')} stopped committing: ${stalled.map((s) => s.message).join('; ')}`,
      {
        where: { file: cd.path },
        hint: 'the steps above its newest committed one never got every rank; check that every node persists the same steps (the L3 cadence) and that the level is writable',
      },
    );
}

async function inspect(
  dir: string,
  flags: CommonFlags & { readonly step: number; readonly rank?: number },
  output: CliOutput,
): Promise<void> {
  const { cd, job } = await openDir(dir, flags);
  if (job === null)
    throw new CubeError('INVALID_VALUE', `${cd.path} holds no checkpoints`, {
      where: { file: cd.path },
    });
  const rows = await statusesByStep(cd, job);
  const row = rows.get(flags.step);
  if (row === undefined)
    throw unknownIdError('step', String(flags.step), [...rows.keys()].map(String), {
      file: cd.path,
      field: '--step',
    });
  // The first level, in restore order, that has shards of the step.
  const found = cd.roots.find((r) => (row.get(r.level)?.shards.length ?? 0) > 0);
  const status = found === undefined ? undefined : row.get(found.level);
  if (found === undefined || status === undefined) {
    const why = [...row.values()].flatMap((s) => s.problems.map((p) => p.message));
    throw new CubeError(
      'INFEASIBLE',
      `step ${flags.step} of ${job} has no readable shard at ${cd.roots.map((r) => r.level).join(', ')}${why.length > 0 ? `: ${why.join('; ')}` : ''}`,
      { where: { file: cd.path } },
    );
  }
  const ranks = status.shards.map((s) => s.rank);
  if (flags.rank !== undefined && !ranks.includes(flags.rank))
    throw unknownIdError('rank', String(flags.rank), ranks.map(String), {
      file: status.location,
      field: '--rank',
    });
  const shards = [];
  for (const shard of status.shards) {
    if (flags.rank !== undefined && shard.rank !== flags.rank) continue;
    const key = fileKey(job, shard.file);
    const header = await readSafetensorsHeaderFrom(found.store, key);
    const record = await readRecord(found.store, job, flags.step, shard.rank);
    const manifestShard = status.manifest?.shards.find((s) => s.rank === shard.rank);
    const extra =
      manifestShard?.extra ?? (record.kind === 'valid' ? record.value.extra : undefined);
    shards.push({
      rank: shard.rank,
      file: found.store.locate(key),
      bytes: shard.bytes,
      xxh3: manifestShard?.xxh3 ?? (record.kind === 'valid' ? record.value.xxh3 : null),
      node: manifestShard?.node ?? (record.kind === 'valid' ? record.value.node : null),
      savedAt: record.kind === 'valid' ? record.value.savedAt : null,
      timeline: record.kind === 'valid' ? record.value.timeline : null,
      metadata: header.metadata,
      tensors: header.tensors.map((t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        bytes: t.end - t.begin,
      })),
      extraKeys:
        typeof extra === 'object' && extra !== null && !Array.isArray(extra)
          ? Object.keys(extra)
          : [],
    });
  }
  const report = {
    job,
    step: flags.step,
    level: found.level,
    location: status.location,
    state: status.state,
    timeline: status.timeline,
    worldSize: status.worldSize,
    shards,
  };
  if (flags.json === true) {
    printJson(output, report);
    return;
  }
  const lines = [
    `${job} step ${flags.step} at ${found.level}: ${status.state}, timeline ${status.timeline ?? '?'}, world size ${status.worldSize ?? '?'}`,
    `  ${status.location}`,
  ];
  for (const s of shards) {
    lines.push(
      '',
      `rank ${s.rank}: ${s.file}`,
      `  ${s.bytes} bytes, xxh3 ${s.xxh3 ?? '?'}, node ${s.node ?? '?'}, saved ${s.savedAt ?? '?'}, timeline ${s.timeline ?? '?'}`,
      `  metadata: ${Object.entries(s.metadata)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
      renderTable(
        ['tensor', 'dtype', 'shape', 'bytes'],
        s.tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, t.bytes]),
      )
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
      `  extra state keys: ${s.extraKeys.length === 0 ? '(none)' : s.extraKeys.join(', ')}`,
    );
  }
  output.out(lines.join('\n'));
}

/** `cube ckpt ls | verify | inspect`: reading checkpoints on disk. */
export function registerCkptCommands(program: Command, output: CliOutput): void {
  const ckpt = program
    .command('ckpt')
    .description('checkpoints on disk: list, verify checksums, inspect shards')
    .enablePositionalOptions();
  const dirHelp =
    'a directory holding L1/ L2/ L3/ level roots, one level root, or one job directory';
  ckpt
    .command('ls')
    .description('steps × levels: shards present, complete or not, size')
    .argument('<dir>', dirHelp)
    .option('--job <id>', 'the job, when the level roots hold several')
    .option(
      '--level <L>',
      'the level of a single level root (default: from its name or manifests)',
      parseLevel,
    )
    .option('--json', 'print {steps: [{step, levels, complete, bytes, timeline, timelines}]}')
    .action((dir: string, flags: CommonFlags) => ls(dir, flags, output));
  ckpt
    .command('verify')
    .description(
      'check the size and XXH3-64 of every committed shard, and that no level stopped committing; exit 1 when either fails',
    )
    .argument('<dir>', dirHelp)
    .option('--step <S>', 'only this step', parseCount('--step'))
    .option('--job <id>', 'the job, when the level roots hold several')
    .option('--level <L>', 'the level of a single level root', parseLevel)
    .option('--json', 'print the result as JSON')
    .action((dir: string, flags: CommonFlags & { step?: number }) => verify(dir, flags, output));
  ckpt
    .command('inspect')
    .description("a step's shards: tensors, shapes, dtypes, bytes, and the extra state keys")
    .argument('<dir>', dirHelp)
    .requiredOption('--step <S>', 'the step', parseCount('--step'))
    .option('--rank <R>', 'only this rank', parseCount('--rank'))
    .option('--job <id>', 'the job, when the level roots hold several')
    .option('--level <L>', 'read this level (default: the first that has the step)', parseLevel)
    .option('--json', 'print the result as JSON')
    .action((dir: string, flags: CommonFlags & { step: number; rank?: number }) =>
      inspect(dir, flags, output),
    );
}

/** What rank 0's training log says about a recovery: the losses of the steps run again. */
export interface LogReplay {
  /** The last step rank 0 logged before the fault (attempt 0). */
  readonly lastStepBeforeFault: number | null;
  /** Steps logged both before the fault and by a later attempt. */
  readonly replayedSteps: number;
  /** The first replayed step whose loss differs (hex floats compared as text), if any. */
  readonly firstDifference: { step: number; before: string; after: string } | null;
}

const stepLine = /^step (\d+) loss (\S+)$/;

/** The `step N loss X` lines of one log, by step (a later line for a step wins). */
export function lossesByStep(log: string): Map<number, string> {
  const losses = new Map<number, string>();
  for (const line of log.split('\n')) {
    const m = stepLine.exec(line.trim());
    if (m !== null) losses.set(Number(m[1]), m[2] ?? '');
  }
  return losses;
}

/**
 * Compares rank 0's loss lines of the attempt that was interrupted (the first) with those of
 * the attempts after it: every step they share was run again from a restored checkpoint and
 * must give the same loss, bit for bit (the example trainer logs losses as `float.hex()`).
 */
export function replayFromLogs(interrupted: string, later: readonly string[]): LogReplay {
  const before = lossesByStep(interrupted);
  let replayedSteps = 0;
  let firstDifference: LogReplay['firstDifference'] = null;
  for (const log of later)
    for (const [step, after] of lossesByStep(log)) {
      const was = before.get(step);
      if (was === undefined) continue;
      replayedSteps += 1;
      if (was !== after && firstDifference === null) firstDifference = { step, before: was, after };
    }
  const steps = [...before.keys()];
  return {
    lastStepBeforeFault: steps.length === 0 ? null : Math.max(...steps),
    replayedSteps,
    firstDifference,
  };
}

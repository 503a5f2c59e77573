import { useEffect, useState } from 'react';
import { useClient } from './client-context.tsx';
import type { JobSeries, SeriesPoint } from './types.ts';

/**
 * A job's curve, one point per (attempt, step), followed while `follow` is true: each poll
 * asks only for what came after the last point it has (from the step before it, since the
 * newest step may have been half-reported), so a long job costs a few points per second.
 */
export function useSeries(
  jobId: string,
  follow: boolean,
  intervalMs = 1000,
): { points: readonly SeriesPoint[]; error: Error | null; loaded: boolean } {
  const client = useClient();
  const [state, setState] = useState<{
    jobId: string;
    points: readonly SeriesPoint[];
    error: Error | null;
    loaded: boolean;
  }>({ jobId, points: [], error: null, loaded: false });

  useEffect(() => {
    const controller = new AbortController();
    let points: SeriesPoint[] = [];
    let timer: ReturnType<typeof setTimeout> | null = null;
    const poll = async (): Promise<void> => {
      const last = points.at(-1);
      const query =
        last === undefined ? '' : `?attempt=${last.attempt}&after=${Math.max(0, last.step - 1)}`;
      try {
        const answer = await client.get<JobSeries>(
          `/jobs/${encodeURIComponent(jobId)}/series${query}`,
          { signal: controller.signal },
        );
        if (answer.points.length > 0) {
          const fresh = new Set(answer.points.map((p) => `${p.attempt}:${p.step}`));
          points = [
            ...points.filter((p) => !fresh.has(`${p.attempt}:${p.step}`)),
            ...answer.points,
          ];
          points.sort((a, b) => a.attempt - b.attempt || a.step - b.step);
        }
        setState({ jobId, points, error: null, loaded: true });
      } catch (e) {
        if (controller.signal.aborted) return;
        setState((s) => ({ ...s, error: e instanceof Error ? e : new Error(String(e)) }));
      }
      if (follow && !controller.signal.aborted) timer = setTimeout(() => void poll(), intervalMs);
    };
    void poll();
    return () => {
      controller.abort();
      if (timer !== null) clearTimeout(timer);
    };
  }, [client, jobId, follow, intervalMs]);

  return state.jobId === jobId ? state : { points: [], error: null, loaded: false };
}

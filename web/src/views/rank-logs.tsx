import { useEffect, useRef, useState } from 'react';
import { useClient } from '../api/client-context.tsx';
import { ErrorBox } from '../components/states.tsx';

/**
 * One rank's log of one attempt, followed while the job runs: each poll fetches only the
 * bytes after what it has (`offset`).
 */
export function RankLogs(props: {
  jobId: string;
  worldSize: number;
  attempts: number;
  follow: boolean;
}) {
  const client = useClient();
  const [rank, setRank] = useState(0);
  const [attempt, setAttempt] = useState(props.attempts - 1);
  const [text, setText] = useState('');
  const [error, setError] = useState<Error | null>(null);
  const pre = useRef<HTMLPreElement>(null);
  const latest = props.attempts - 1;

  // Follow the newest attempt when a restart makes a new one (unless another was chosen).
  const followsNewest = useRef(true);
  useEffect(() => {
    if (followsNewest.current) setAttempt(latest);
  }, [latest]);

  useEffect(() => {
    const controller = new AbortController();
    let offset = 0;
    let timer: ReturnType<typeof setTimeout> | null = null;
    setText('');
    setError(null);
    const poll = async (): Promise<void> => {
      let more = false;
      try {
        const { text: chunk, headers } = await client.getText(
          `/jobs/${encodeURIComponent(props.jobId)}/logs?rank=${rank}&attempt=${attempt}&offset=${offset}`,
          { signal: controller.signal },
        );
        // Reads are at most 1 MiB: go on from where this one ended (the server says where).
        const next = Number(headers.get('x-cube-log-next-offset') ?? '0');
        const size = Number(headers.get('x-cube-log-size') ?? '0');
        if (chunk.length > 0) setText((t) => (t + chunk).slice(-200_000));
        offset = Math.max(offset, next);
        // Only the newest 200 kB are shown: skip what would scroll out at once.
        if (size - offset > 200_000) {
          offset = size - 200_000;
          setText('');
        }
        more = offset < size;
        setError(null);
      } catch (e) {
        if (controller.signal.aborted) return;
        setError(e instanceof Error ? e : new Error(String(e)));
      }
      if ((more || props.follow) && !controller.signal.aborted)
        timer = setTimeout(() => void poll(), more ? 0 : 1500);
    };
    void poll();
    return () => {
      controller.abort();
      if (timer !== null) clearTimeout(timer);
    };
  }, [client, props.jobId, props.follow, rank, attempt]);

  useEffect(() => {
    const el = pre.current;
    if (el !== null) el.scrollTop = el.scrollHeight;
  }, [text]);

  return (
    <div className="logs">
      <div className="toolbar">
        <label>
          rank{' '}
          <select value={rank} onChange={(e) => setRank(Number(e.target.value))} aria-label="rank">
            {Array.from({ length: props.worldSize }, (_, r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        <label>
          attempt{' '}
          <select
            value={attempt}
            aria-label="attempt"
            onChange={(e) => {
              followsNewest.current = Number(e.target.value) === latest;
              setAttempt(Number(e.target.value));
            }}
          >
            {Array.from({ length: props.attempts }, (_, a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </label>
      </div>
      {error === null ? null : <ErrorBox what="the log" error={error} />}
      <pre ref={pre} className="log-text" data-testid="rank-log">
        {text === '' ? '(no output yet)' : text}
      </pre>
    </div>
  );
}

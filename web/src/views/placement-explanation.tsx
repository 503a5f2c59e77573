const attemptLine = /^attempt (\d+): /;

/**
 * Why the ranks run where they do, for the current attempt: the control plane puts what each
 * recovery changed first (`attempt N: spare-0 (hot spare ...) takes rank 1 of node-1`), then
 * the lines of the attempts before it, down to the first placement's reasoning.
 */
export function PlacementExplanation(props: { lines: readonly string[]; attempt: number }) {
  const { lines, attempt } = props;
  if (lines.length === 0) return null;
  const of = (line: string): number => Number(attemptLine.exec(line)?.[1] ?? 0);
  const current = lines.some((l) => of(l) === attempt);
  return (
    <div className="explanation" data-testid="placement-explanation" data-attempt={attempt}>
      {current ? null : (
        <p className="muted small">
          No explanation of attempt {attempt} was recorded; these lines describe attempt{' '}
          {Math.max(...lines.map(of))}.
        </p>
      )}
      <ul>
        {lines.map((line, i) => {
          const n = of(line);
          return (
            <li
              key={i}
              data-attempt={n}
              className={n === attempt ? 'explanation-current' : 'explanation-past'}
            >
              {attemptLine.test(line) ? (
                <>
                  <b>attempt {n}</b>: {line.replace(attemptLine, '')}
                </>
              ) : (
                <>
                  {attempt > 0 ? <b>attempt 0</b> : null}
                  {attempt > 0 ? ': ' : null}
                  {line}
                </>
              )}
            </li>
          );
        })}
      </ul>
    </div>
  );
}

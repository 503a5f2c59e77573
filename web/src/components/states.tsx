import type { ReactNode } from 'react';

/** Shown while the first answer is on its way. */
export function Loading(props: { what: string }) {
  return (
    <div className="state state-loading" role="status">
      <span className="spinner" aria-hidden="true" /> Loading {props.what}…
    </div>
  );
}

/** Shown when a fetch failed: what failed and the server's message. */
export function ErrorBox(props: { what: string; error: Error; onRetry?: () => void }) {
  return (
    <div className="state state-error" role="alert">
      <strong>Could not load {props.what}.</strong> {props.error.message}
      {props.onRetry === undefined ? null : (
        <button type="button" onClick={props.onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}

/** Shown when there is nothing to show yet, with what would change that. */
export function Empty(props: { children: ReactNode }) {
  return <div className="state state-empty">{props.children}</div>;
}

/** A titled panel. */
export function Panel(props: {
  title: string;
  actions?: ReactNode;
  className?: string;
  children: ReactNode;
}) {
  return (
    <section className={`panel ${props.className ?? ''}`}>
      <header className="panel-head">
        <h2>{props.title}</h2>
        {props.actions}
      </header>
      <div className="panel-body">{props.children}</div>
    </section>
  );
}

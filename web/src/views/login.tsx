import { useState, type FormEvent } from 'react';
import { ApiError, verifyToken } from '../api/client.ts';

/**
 * Sign-in with an API token (the one `cube up` or `cube server` prints, or
 * `admin-tokens.json` in the server's data directory). The token is checked against the API
 * before it is kept.
 */
export function Login(props: { onToken: (token: string) => void; notice: string | null }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    const value = token.trim();
    if (value === '') {
      setError('Enter an API token.');
      return;
    }
    setBusy(true);
    setError(null);
    verifyToken(value).then(
      () => props.onToken(value),
      (err: unknown) => {
        setBusy(false);
        setError(
          err instanceof ApiError && err.status === 401
            ? 'The control plane refused this token.'
            : err instanceof Error
              ? err.message
              : String(err),
        );
      },
    );
  };

  return (
    <main className="login">
      <form className="login-card" onSubmit={submit}>
        <h1>
          <span className="logo">▣</span> Cube
        </h1>
        <p>Sign in with an API token of this control plane.</p>
        {props.notice === null ? null : <p className="notice">{props.notice}</p>}
        <label htmlFor="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="current-password"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          placeholder="paste the token `cube up` printed"
        />
        {error === null ? null : (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
        <p className="hint">
          The token is in <code>admin-tokens.json</code> in the server&apos;s data directory, and{' '}
          <code>cube up</code> prints it.
        </p>
      </form>
    </main>
  );
}

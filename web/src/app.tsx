import { lazy, Suspense, useCallback, useMemo, useState } from 'react';
import { createClient } from './api/client.ts';
import { ClientProvider } from './api/client-context.tsx';
import { Link, usePath } from './router.tsx';
import { savedToken, saveToken } from './token-store.ts';
import { ClusterView } from './views/cluster.tsx';
import { Loading } from './components/states.tsx';
import { JobsView } from './views/jobs.tsx';
import { Login } from './views/login.tsx';
import { toolViews } from './views/tool-views.tsx';

// Pages with charts load their code on first visit: the cluster view, the first page most
// people open, does not wait for the chart library.
const JobPage = lazy(() => import('./views/job-page.tsx').then((m) => ({ default: m.JobPage })));

const sections = [
  { path: '/', label: 'Cluster' },
  { path: '/jobs', label: 'Jobs' },
  ...toolViews.map((v) => ({ path: v.path, label: v.label })),
];

function Page(props: { path: string }) {
  const { path } = props;
  const job = /^\/jobs\/([^/]+)$/.exec(path);
  if (job?.[1] !== undefined) return <JobPage id={decodeURIComponent(job[1])} />;
  if (path === '/jobs') return <JobsView />;
  const tool = toolViews.find((v) => v.path === path);
  if (tool !== undefined) return <tool.component />;
  if (path === '/' || path === '/cluster') return <ClusterView />;
  return (
    <div className="state state-empty">
      No page at <code>{path}</code>. <Link to="/">Go to the cluster</Link>.
    </div>
  );
}

/** The dashboard: sign-in, then the navigation bar and the page the address names. */
export function App() {
  const [token, setToken] = useState<string | null>(savedToken);
  const [notice, setNotice] = useState<string | null>(null);
  const path = usePath();

  const signOut = useCallback((why: string | null) => {
    saveToken(null);
    setToken(null);
    setNotice(why);
  }, []);
  const client = useMemo(
    () =>
      token === null
        ? null
        : createClient(token, () => signOut('The control plane no longer accepts the token.')),
    [token, signOut],
  );

  if (client === null)
    return (
      <Login
        notice={notice}
        onToken={(t) => {
          saveToken(t);
          setNotice(null);
          setToken(t);
        }}
      />
    );

  const active = (p: string): boolean =>
    p === '/' ? path === '/' || path === '/cluster' : path.startsWith(p);
  return (
    <ClientProvider client={client}>
      <div className="shell">
        <nav className="topbar">
          <Link to="/" className="brand">
            <span className="logo">▣</span> Cube
          </Link>
          {sections.map((s) => (
            <Link key={s.path} to={s.path} className={active(s.path) ? 'tab tab-active' : 'tab'}>
              {s.label}
            </Link>
          ))}
          <span className="spacer" />
          <button type="button" className="link-button" onClick={() => signOut(null)}>
            Sign out
          </button>
        </nav>
        <main className="content">
          <Suspense fallback={<Loading what="the page" />}>
            <Page path={path} />
          </Suspense>
        </main>
      </div>
    </ClientProvider>
  );
}

/**
 * GET /dashboard: who the key is, which pages it sees, then the dashboard of one of them.
 * The key is kept in sessionStorage for this tab, under the same name GraphiQL uses.
 */
import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { DashboardPagesDocument } from '../../../client/generated/graphql';
import { Dashboard, LiveBadge } from './dashboard';
import { GatewayError, request, storedKey, storeKey, type LiveState } from './gateway-client';
import { todayLabel } from './time';
import './dashboard.css';

interface PageChoice {
  /** null: every page the key sees */
  id: string | null;
  name: string;
}

type Session =
  | { kind: 'checking' }
  | { kind: 'key-needed'; message: string | null }
  | { kind: 'unreachable'; message: string }
  | { kind: 'ready'; choices: PageChoice[] };

const ALL_PAGES: PageChoice = { id: null, name: 'All pages' };

function pageFromHash(): string | null {
  return new URLSearchParams(location.hash.slice(1)).get('page');
}

/** The pages a key can pick from; one "all pages" entry when there is nothing to pick. */
function choicesOf(scopedTo: string[] | null, pages: { id: string; name: string | null }[]): PageChoice[] {
  const choices: PageChoice[] = pages.map((page) => ({ id: page.id, name: page.name ?? `Page ${page.id}` }));
  for (const id of scopedTo ?? []) if (!choices.some((choice) => choice.id === id)) choices.push({ id, name: `Page ${id}` });
  if (choices.length === 0) return [ALL_PAGES];
  // Several pages may also be looked at all at once (the key narrows every query to its pages).
  return choices.length > 1 ? [ALL_PAGES, ...choices] : choices;
}

function keyMessage(key: string, error: GatewayError): string {
  if (key === '') return 'This gateway needs an API key. Ask its administrator for one (a VIEWER key is enough).';
  if (error.code === 'UNAUTHENTICATED') return 'The gateway refused this key: it is mistyped, unknown or revoked. Check it and try again.';
  return `This key may not open the dashboard: ${error.message}`;
}

function App() {
  const [key, setKey] = useState(storedKey);
  const [session, setSession] = useState<Session>({ kind: 'checking' });
  const [pageId, setPageId] = useState<string | null>(pageFromHash);
  const [live, setLive] = useState<LiveState>({ kind: 'connecting' });

  const check = useCallback(async (candidate: string) => {
    setSession({ kind: 'checking' });
    try {
      const { viewer, pages } = await request(DashboardPagesDocument, {}, candidate);
      setSession({
        kind: 'ready',
        choices: choicesOf(
          viewer.pageIds,
          pages.edges.map(({ node }) => node),
        ),
      });
    } catch (error) {
      if (error instanceof GatewayError && error.isKeyProblem) setSession({ kind: 'key-needed', message: keyMessage(candidate, error) });
      else setSession({ kind: 'unreachable', message: error instanceof Error ? error.message : String(error) });
    }
  }, []);

  useEffect(() => {
    void check(key);
  }, [key, check]);

  useEffect(() => {
    const onHash = () => setPageId(pageFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  const applyKey = (next: string) => {
    storeKey(next);
    setKey(next);
    // The same key again (e.g. after "retry"): check it again all the same.
    if (next === key) void check(next);
  };
  const onKeyProblem = useCallback((message: string) => setSession({ kind: 'key-needed', message }), []);

  if (session.kind === 'checking') {
    return (
      <main class="center">
        <p class="boot">Opening the dashboard…</p>
      </main>
    );
  }
  if (session.kind === 'unreachable') {
    return (
      <main class="center">
        <div class="panel">
          <h1>Dashboard</h1>
          <p class="banner" role="alert">
            {session.message}
          </p>
          <button type="button" class="primary" onClick={() => void check(key)}>
            Try again
          </button>
        </div>
      </main>
    );
  }
  if (session.kind === 'key-needed') return <KeyForm initial={key} message={session.message} onUse={applyKey} />;

  const choice = session.choices.find((candidate) => candidate.id === pageId) ?? session.choices[0];
  const pick = (id: string) => {
    const next = id === '' ? null : id;
    history.replaceState(null, '', next === null ? location.pathname : `#page=${encodeURIComponent(next)}`);
    setPageId(next);
  };
  return (
    <div class="app">
      <header class="top">
        <div class="title">
          <p class="eyebrow">
            <span class="wide-only">Messenger Codes · </span>
            {todayLabel(new Date())}
          </p>
          {session.choices.length > 1 ? (
            <label class="picker">
              <span class="visually-hidden">Page</span>
              <select id="dashboard-page" value={choice.id ?? ''} onChange={(event) => pick((event.target as HTMLSelectElement).value)}>
                {session.choices.map((option) => (
                  <option key={option.id ?? ''} value={option.id ?? ''}>
                    {option.name}
                  </option>
                ))}
              </select>
            </label>
          ) : (
            <h1 id="dashboard-page-name">{choice.name}</h1>
          )}
        </div>
        <div class="top-side">
          <LiveBadge state={live} />
          <p class="key-state">
            <span class="wide-only">{key === '' ? 'open gateway' : `key ${key.slice(0, 8)}…`}</span>
            {key !== '' && (
              <button type="button" class="link" onClick={() => applyKey('')}>
                Forget key
              </button>
            )}
          </p>
        </div>
      </header>
      <main>
        <Dashboard key={`${key}|${choice.id ?? ''}`} apiKey={key} pageId={choice.id} onKeyProblem={onKeyProblem} onLive={setLive} />
      </main>
    </div>
  );
}

function KeyForm({ initial, message, onUse }: { initial: string; message: string | null; onUse: (key: string) => void }) {
  const [typed, setTyped] = useState(initial);
  return (
    <main class="center">
      <form
        class="panel key-form"
        onSubmit={(event) => {
          event.preventDefault();
          onUse(typed.trim());
        }}
      >
        <h1>Scan dashboard</h1>
        {message && (
          <p class="banner" role="alert" id="dashboard-key-message">
            {message}
          </p>
        )}
        <label for="dashboard-api-key">API key</label>
        <input
          id="dashboard-api-key"
          type="password"
          autoComplete="off"
          spellcheck={false}
          placeholder="mcg_…"
          value={typed}
          onInput={(event) => setTyped((event.target as HTMLInputElement).value)}
        />
        <p class="hint">Kept for this browser tab only, and shared with GraphiQL at /graphql.</p>
        <button type="submit" class="primary">
          Open dashboard
        </button>
      </form>
    </main>
  );
}

const container = document.getElementById('dashboard');
if (!container) throw new Error('#dashboard is missing from index.html');
container.textContent = '';
render(<App />, container);

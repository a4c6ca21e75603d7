/** One page's dashboard: the data it loads, how live scans change it, and its layout. */
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import {
  DashboardCodesDocument,
  DashboardOrphansDocument,
  DashboardRecentScansDocument,
  DashboardTodayDocument,
  type CodeTracking,
  type ScanKind,
} from '../../../client/generated/graphql';
import { HourChart, Sparkline } from './charts';
import { GatewayError, request, startLive, type LiveScan, type LiveState } from './gateway-client';
import { ago, browserTimeZone, bucketIndex, feedTime, localMidnight, sparklineWindow, todayLabel, todayWindow } from './time';

interface CodeRow {
  id: string;
  ref: string | null;
  label: string | null;
  tracking: CodeTracking;
  scanCount: number;
  visitCount: number;
  lastScannedAt: string | null;
  /** day starts (ms) and scans per day, last 30 days */
  starts: number[];
  daily: number[];
}

interface FeedItem {
  id: string;
  ref: string | null;
  kind: ScanKind;
  source: string | null;
  occurredAt: string;
  codeId: string | null;
  codeLabel: string | null;
  /** arrived live (highlighted once), not loaded */
  fresh: boolean;
}

interface Today {
  total: number;
  firstTime: number;
  returning: number;
  uniquePeople: number;
  visits: number;
  starts: number[];
  scans: number[];
  visitsByHour: number[];
  /** end of today, ms: scans at or after it belong to tomorrow */
  end: number;
}

interface Orphan {
  ref: string;
  scanCount: number;
  lastScannedAt: string;
}

type SortKey = 'scans' | 'last' | 'name';

const FEED_LENGTH = 40;
const CODES_SHOWN = 100;
/** Visits are not pushed, and unique people need the server: both are asked for again this often. */
const REFRESH_MS = 60_000;
/** After a burst of live scans, the totals the browser cannot count itself are asked for once. */
const SETTLE_MS = 1_500;

const numbers = new Intl.NumberFormat();
const percent = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 0 });

function codeName(code: { label: string | null; ref: string | null }): string {
  return code.label ?? code.ref ?? 'Static code';
}

function feedItemOf(scan: Omit<LiveScan, 'streamCursor'>, fresh: boolean): FeedItem {
  return {
    id: scan.id,
    ref: scan.ref,
    kind: scan.kind,
    source: scan.source,
    occurredAt: scan.occurredAt,
    codeId: scan.code?.id ?? null,
    codeLabel: scan.code ? codeName({ label: scan.code.label, ref: scan.ref }) : null,
    fresh,
  };
}

/** Newest first by the time Messenger gives, each scan once. */
function mergeFeed(current: FeedItem[], incoming: FeedItem[]): FeedItem[] {
  const byId = new Map(current.map((item) => [item.id, item]));
  for (const item of incoming) if (!byId.has(item.id)) byId.set(item.id, item);
  return [...byId.values()].sort((a, b) => b.occurredAt.localeCompare(a.occurredAt) || b.id.localeCompare(a.id)).slice(0, FEED_LENGTH);
}

function sortCodes(codes: CodeRow[], key: SortKey, descending: boolean): CodeRow[] {
  const direction = descending ? -1 : 1;
  const compare = (a: CodeRow, b: CodeRow): number => {
    if (key === 'scans') return (a.scanCount - b.scanCount) * direction;
    if (key === 'last')
      return ((a.lastScannedAt ?? '') < (b.lastScannedAt ?? '') ? -1 : a.lastScannedAt === b.lastScannedAt ? 0 : 1) * direction;
    return codeName(a).localeCompare(codeName(b), undefined, { numeric: true, sensitivity: 'base' }) * direction;
  };
  return [...codes].sort((a, b) => compare(a, b) || codeName(a).localeCompare(codeName(b), undefined, { numeric: true }));
}

export interface DashboardProps {
  apiKey: string;
  /** null: every page the key sees */
  pageId: string | null;
  /** The key stopped working (revoked meanwhile): back to the key form with this message. */
  onKeyProblem: (message: string) => void;
  /** The state of the live feed, shown in the header. */
  onLive: (state: LiveState) => void;
}

export function Dashboard({ apiKey, pageId, onKeyProblem, onLive }: DashboardProps) {
  const [codes, setCodes] = useState<CodeRow[] | null>(null);
  const [codeTotal, setCodeTotal] = useState(0);
  const [today, setToday] = useState<Today | null>(null);
  const [feed, setFeed] = useState<FeedItem[]>([]);
  const [orphans, setOrphans] = useState<{ total: number; list: Orphan[] } | null>(null);
  const [live, setLive] = useState<LiveState>({ kind: 'connecting' });
  const [problem, setProblem] = useState<string | null>(null);
  const [sort, setSort] = useState<{ key: SortKey; descending: boolean }>({ key: 'scans', descending: true });
  const [now, setNow] = useState(() => Date.now());
  const day = useRef(localMidnight(new Date()).getTime());
  const shownCodes = useRef(codes);
  shownCodes.current = codes;

  const fail = useCallback(
    (error: unknown) => {
      if (error instanceof GatewayError && error.isKeyProblem) onKeyProblem(error.message);
      else setProblem(error instanceof Error ? error.message : String(error));
    },
    [onKeyProblem],
  );

  const loadCodes = useCallback(async () => {
    const window = sparklineWindow(new Date());
    const data = await request(DashboardCodesDocument, { pageId, ...window, timeZone: browserTimeZone() }, apiKey);
    const windowEnd = Date.parse(window.to);
    setCodeTotal(data.codes.totalCount);
    setCodes(
      data.codes.edges.map(({ node }) => {
        const buckets = node.stats.buckets.filter((bucket) => Date.parse(bucket.start) < windowEnd);
        return {
          id: node.id,
          ref: node.ref,
          label: node.label,
          tracking: node.tracking,
          scanCount: node.scanCount,
          visitCount: node.visitCount,
          lastScannedAt: node.lastScannedAt,
          starts: buckets.map((bucket) => Date.parse(bucket.start)),
          daily: buckets.map((bucket) => bucket.total),
        };
      }),
    );
  }, [apiKey, pageId]);

  const loadToday = useCallback(async () => {
    const window = todayWindow(new Date());
    const { scanStats } = await request(DashboardTodayDocument, { pageId, ...window, timeZone: browserTimeZone() }, apiKey);
    setToday({
      total: scanStats.total,
      firstTime: scanStats.firstTime,
      returning: scanStats.returning,
      uniquePeople: scanStats.uniquePeople,
      visits: scanStats.visits,
      starts: scanStats.buckets.map((bucket) => Date.parse(bucket.start)),
      scans: scanStats.buckets.map((bucket) => bucket.total),
      visitsByHour: scanStats.buckets.map((bucket) => bucket.visits),
      end: Date.parse(window.to),
    });
  }, [apiKey, pageId]);

  const loadFeed = useCallback(async () => {
    const { scans } = await request(DashboardRecentScansDocument, { pageId }, apiKey);
    setFeed((current) =>
      mergeFeed(
        current,
        scans.edges.map(({ node }) => feedItemOf(node, false)),
      ),
    );
  }, [apiKey, pageId]);

  const loadOrphans = useCallback(async () => {
    const { orphanRefs } = await request(DashboardOrphansDocument, { pageId }, apiKey);
    setOrphans({ total: orphanRefs.totalCount, list: orphanRefs.edges.map(({ node }) => node) });
  }, [apiKey, pageId]);

  const loadAll = useCallback(async () => {
    try {
      await Promise.all([loadCodes(), loadToday(), loadFeed(), loadOrphans()]);
      setProblem(null);
    } catch (error) {
      fail(error);
    }
  }, [loadCodes, loadToday, loadFeed, loadOrphans, fail]);

  // Loads that follow live scans, each at most once per burst.
  const pending = useRef(new Map<string, ReturnType<typeof setTimeout>>());
  const settle = useCallback(
    (name: string, load: () => Promise<void>) => {
      if (pending.current.has(name)) return;
      pending.current.set(
        name,
        setTimeout(() => {
          pending.current.delete(name);
          load().catch(fail);
        }, SETTLE_MS),
      );
    },
    [fail],
  );

  const onScan = useCallback(
    (scan: LiveScan) => {
      const at = Date.parse(scan.occurredAt);
      setFeed((current) => mergeFeed(current, [feedItemOf(scan, true)]));
      const code = scan.code;
      if (code) {
        setCodes((current) => {
          const index = current?.findIndex((row) => row.id === code.id) ?? -1;
          if (!current || index < 0) return current;
          const row = current[index];
          const daily = [...row.daily];
          const bucket = bucketIndex(row.starts, at, localMidnight(new Date(), 1).getTime());
          if (bucket >= 0) daily[bucket] += 1;
          const next = [...current];
          next[index] = { ...row, scanCount: code.scanCount, visitCount: code.visitCount, lastScannedAt: code.lastScannedAt, daily };
          return next;
        });
        // A code generated after the dashboard loaded: its row comes with the next load.
        if (shownCodes.current && !shownCodes.current.some((row) => row.id === code.id)) settle('codes', loadCodes);
      } else {
        settle('orphans', loadOrphans);
      }
      setToday((current) => {
        if (!current) return current;
        const hour = bucketIndex(current.starts, at, current.end);
        if (hour < 0) return current;
        const scans = [...current.scans];
        scans[hour] += 1;
        return {
          ...current,
          total: current.total + 1,
          firstTime: current.firstTime + (scan.kind === 'POSTBACK' ? 1 : 0),
          returning: current.returning + (scan.kind === 'REFERRAL' ? 1 : 0),
          scans,
        };
      });
      // Unique people cannot be counted here (the browser never sees who scanned).
      settle('today', loadToday);
    },
    [settle, loadCodes, loadOrphans, loadToday],
  );

  useEffect(() => {
    void loadAll();
    const stop = startLive({
      key: apiKey,
      pageId,
      onScan,
      onState: setLive,
      onConnected: (connection) => {
        // The first load ran before the subscription existed: loading again once it does
        // closes that window (the feed merges by id; counts are absolute). A reconnect that
        // resumed from a cursor gets the scans stored meanwhile replayed; one that could not
        // (no scan received yet) loads them.
        if (connection !== 'resumed') void loadAll();
      },
    });
    const timers = pending.current;
    return () => {
      stop();
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
    };
  }, [apiKey, pageId, loadAll, onScan]);

  // A screen left on: relative times move, visits come in, and at midnight today starts over.
  useEffect(() => {
    const tick = setInterval(() => setNow(Date.now()), 15_000);
    const refresh = setInterval(() => {
      const midnight = localMidnight(new Date()).getTime();
      if (midnight !== day.current) {
        day.current = midnight;
        void loadAll();
      } else {
        Promise.all([loadToday(), loadCodes()]).catch(fail);
      }
    }, REFRESH_MS);
    return () => {
      clearInterval(tick);
      clearInterval(refresh);
    };
  }, [loadAll, loadToday, loadCodes, fail]);

  useEffect(() => {
    onLive(live);
    if (live.kind === 'refused' && live.keyProblem) onKeyProblem(live.message);
    else if (live.kind === 'refused') setProblem(`The live feed stopped: ${live.message}`);
  }, [live, onLive, onKeyProblem]);

  const sorted = useMemo(() => (codes ? sortCodes(codes, sort.key, sort.descending) : []), [codes, sort]);
  const redirects = useMemo(() => (codes ?? []).filter((code) => code.tracking === 'REDIRECT'), [codes]);

  return (
    <>
      {problem && (
        <p class="banner" role="alert">
          {problem}
        </p>
      )}
      <div class="grid">
        <Totals today={today} />
        <section class="card hours" aria-labelledby="hours-title">
          <h2 id="hours-title">Today by hour</h2>
          {today ? (
            <HourChart starts={today.starts} scans={today.scans} visits={today.visitsByHour} showVisits={redirects.length > 0} />
          ) : (
            <div class="hour-chart skeleton" />
          )}
          <p class="legend">
            <span class="swatch scans" /> scans
            {redirects.length > 0 && (
              <>
                <span class="swatch visits" /> visits of redirect links
              </>
            )}
          </p>
        </section>
        <CodesTable
          codes={codes}
          sorted={sorted}
          total={codeTotal}
          now={now}
          sort={sort}
          onSort={(key) => setSort((current) => ({ key, descending: current.key === key ? !current.descending : key !== 'name' }))}
          onSortChoice={(key) => setSort({ key, descending: key !== 'name' })}
        />
        <Feed feed={feed} now={now} />
        <Funnel codes={redirects} />
        <Orphans orphans={orphans} now={now} />
      </div>
    </>
  );
}

export function LiveBadge({ state }: { state: LiveState }) {
  const [text, title] =
    state.kind === 'live'
      ? ['Live', 'New scans appear as they are stored']
      : state.kind === 'connecting'
        ? ['Connecting…', 'Opening the live feed']
        : state.kind === 'reconnecting'
          ? ['Reconnecting…', 'The connection dropped; scans stored meanwhile are fetched once it is back']
          : ['Not live', state.message];
  return (
    <p class={`live-badge ${state.kind}`} role="status" title={title} data-state={state.kind}>
      <span class="dot" aria-hidden="true" />
      {text}
    </p>
  );
}

function Totals({ today }: { today: Today | null }) {
  const hour = today ? bucketIndex(today.starts, Date.now(), today.end) : -1;
  const thisHour = today && hour >= 0 ? today.scans[hour] : 0;
  const share = (part: number) => (today && today.total > 0 ? `${percent.format(part / today.total)} of scans` : 'of scans');
  const tiles: [string, keyof Today, string, string][] = [
    ['Scans today', 'total', 'every scan of a code or ref', `${numbers.format(thisHour)} this hour`],
    ['First-time', 'firstTime', 'started a conversation (Get Started)', share(today?.firstTime ?? 0)],
    ['Returning', 'returning', 'came back to an existing conversation', share(today?.returning ?? 0)],
    ['People', 'uniquePeople', 'distinct people who scanned', 'distinct'],
    ['Visits', 'visits', 'opened a redirect link', 'redirect links'],
  ];
  return (
    <section class="totals" aria-label={`Today, ${todayLabel(new Date())}`}>
      {tiles.map(([label, field, hint, detail], index) => (
        <div class={`tile${index === 0 ? ' primary' : ''}`} key={field} title={hint} data-total={field}>
          <span class="tile-label">{label}</span>
          <span class="tile-value">{today ? numbers.format(today[field] as number) : '–'}</span>
          <span class="tile-detail">{detail}</span>
        </div>
      ))}
    </section>
  );
}

interface CodesTableProps {
  codes: CodeRow[] | null;
  sorted: CodeRow[];
  total: number;
  now: number;
  sort: { key: SortKey; descending: boolean };
  onSort: (key: SortKey) => void;
  /** Narrow screens hide the last-scan column, so they choose the order from a list. */
  onSortChoice: (key: SortKey) => void;
}

function CodesTable({ codes, sorted, total, now, sort, onSort, onSortChoice }: CodesTableProps) {
  const header = (key: SortKey, label: string, className: string) => (
    <th class={className} aria-sort={sort.key === key ? (sort.descending ? 'descending' : 'ascending') : 'none'}>
      <button type="button" class="sort" data-sort={key} onClick={() => onSort(key)}>
        {label}
        <span class="arrow" aria-hidden="true">
          {sort.key === key ? (sort.descending ? '↓' : '↑') : ''}
        </span>
      </button>
    </th>
  );
  return (
    <section class="card codes" aria-labelledby="codes-title">
      <div class="card-head">
        <h2 id="codes-title">Codes</h2>
        <label class="narrow-only sort-choice">
          <span class="visually-hidden">Order</span>
          <select value={sort.key} onChange={(event) => onSortChoice((event.target as HTMLSelectElement).value as SortKey)}>
            <option value="scans">Most scanned</option>
            <option value="last">Latest scan</option>
            <option value="name">By name</option>
          </select>
        </label>
        <span class="count">
          {codes ? (total > codes.length ? `${CODES_SHOWN} most scanned of ${numbers.format(total)}` : numbers.format(total)) : ''}
        </span>
      </div>
      {codes === null ? (
        <p class="empty">Loading codes…</p>
      ) : codes.length === 0 ? (
        <p class="empty">No codes yet. Generate one with the generateCode mutation (GraphiQL at /graphql).</p>
      ) : (
        <table class="codes-table">
          <thead>
            <tr>
              {header('name', 'Code', 'col-name')}
              <th class="col-spark">
                <span class="wide-only">Last </span>30 days
              </th>
              {header('scans', 'Scans', 'col-scans')}
              {header('last', 'Last scan', 'col-last')}
            </tr>
          </thead>
          <tbody>
            {sorted.map((code) => (
              <tr key={code.id} data-code-id={code.id} data-ref={code.ref ?? ''}>
                <td class="col-name">
                  <span class="code-label">{codeName(code)}</span>
                  <span class="code-meta">
                    {code.label && code.ref && <code>{code.ref}</code>}
                    {code.tracking === 'REDIRECT' && <span class="tag">redirect</span>}
                    <span class="code-last-narrow">{code.lastScannedAt ? ago(code.lastScannedAt, now) : 'never scanned'}</span>
                  </span>
                </td>
                <td class="col-spark">
                  <Sparkline starts={code.starts} values={code.daily} label={`Scans per day of ${codeName(code)}`} />
                </td>
                <td class="col-scans">
                  <span class="code-scans" key={code.scanCount}>
                    {numbers.format(code.scanCount)}
                  </span>
                </td>
                <td class="col-last">
                  {code.lastScannedAt ? <time dateTime={code.lastScannedAt}>{ago(code.lastScannedAt, now)}</time> : 'never'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Feed({ feed, now }: { feed: FeedItem[]; now: number }) {
  const today = new Date(now);
  return (
    <section class="card feed" aria-labelledby="feed-title">
      <div class="card-head">
        <h2 id="feed-title">Live scans</h2>
      </div>
      {feed.length === 0 ? (
        <p class="empty">No scans yet. They appear here the moment Messenger reports them.</p>
      ) : (
        <ol class="feed-list" aria-live="polite">
          {feed.map((item) => (
            <li key={item.id} class={`feed-item${item.fresh ? ' fresh' : ''}`} data-scan-id={item.id}>
              <time dateTime={item.occurredAt}>{feedTime(item.occurredAt, today)}</time>
              <span class="feed-what">
                <span class="feed-code">{item.codeLabel ?? item.ref ?? 'page link'}</span>
                {item.codeId === null && <span class="tag warn">no code</span>}
              </span>
              <span class={`kind ${item.kind === 'POSTBACK' ? 'first' : 'returning'}`}>
                {item.kind === 'POSTBACK' ? 'first time' : 'returning'}
              </span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function Funnel({ codes }: { codes: CodeRow[] }) {
  const visits = codes.reduce((sum, code) => sum + code.visitCount, 0);
  const scans = codes.reduce((sum, code) => sum + code.scanCount, 0);
  const top = [...codes].sort((a, b) => b.visitCount - a.visitCount).slice(0, 6);
  const widest = Math.max(1, ...top.map((code) => Math.max(code.visitCount, code.scanCount)));
  return (
    <section class="card funnel" aria-labelledby="funnel-title">
      <div class="card-head">
        <h2 id="funnel-title">Redirect funnel</h2>
        <span class="count">visits → scans</span>
      </div>
      {codes.length === 0 ? (
        <p class="empty">
          No redirect codes. Codes generated with tracking: REDIRECT count the visits of their link, then the scans they lead to.
        </p>
      ) : (
        <>
          <p class="funnel-summary">
            <span>
              <strong>{numbers.format(visits)}</strong> visits
            </span>
            <span aria-hidden="true">→</span>
            <span>
              <strong>{numbers.format(scans)}</strong> scans
            </span>
            <span class="rate">{visits > 0 ? percent.format(scans / visits) : '–'}</span>
          </p>
          <ul class="funnel-list">
            {top.map((code) => (
              <li key={code.id} data-code-id={code.id}>
                <span class="funnel-name">{codeName(code)}</span>
                <span class="bars" aria-label={`${code.visitCount} visits, ${code.scanCount} scans`}>
                  <span class="bar visits" style={{ width: `${(code.visitCount / widest) * 100}%` }} />
                  <span class="bar scans" style={{ width: `${(code.scanCount / widest) * 100}%` }} />
                </span>
                <span class="funnel-rate">{code.visitCount > 0 ? percent.format(code.scanCount / code.visitCount) : '–'}</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

function Orphans({ orphans, now }: { orphans: { total: number; list: Orphan[] } | null; now: number }) {
  return (
    <section class="card orphans" aria-labelledby="orphans-title">
      <div class="card-head">
        <h2 id="orphans-title">Refs without a code</h2>
        <span class="count">{orphans ? numbers.format(orphans.total) : ''}</span>
      </div>
      {orphans === null ? (
        <p class="empty">Loading…</p>
      ) : orphans.list.length === 0 ? (
        <p class="empty">None: every scanned ref has a code.</p>
      ) : (
        <ul class="orphan-list">
          {orphans.list.map((orphan) => (
            <li key={orphan.ref} data-orphan-ref={orphan.ref}>
              <code>{orphan.ref}</code>
              <span class="orphan-scans">{numbers.format(orphan.scanCount)}</span>
              <time dateTime={orphan.lastScannedAt}>{ago(orphan.lastScannedAt, now)}</time>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

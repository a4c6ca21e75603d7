/**
 * GET /dashboard in a real headless Chromium against a real gateway: with a VIEWER key of one
 * page it shows that page's codes (and no other page's), a scan posted to the signed webhook
 * updates the count and the feed, a wrong key gets a clear message, the key stays for the tab,
 * a key of several pages gets a picker, an open gateway needs no key, a connection cut through
 * a TCP proxy is resumed with scanned(after:) and every scan stored meanwhile is shown once, and
 * nothing is requested from another origin (it must work offline). Screenshots at phone,
 * desktop and TV widths are written to DASHBOARD_SCREENSHOTS, else to a temporary directory.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { DASHBOARD_CSP } from '../src/dashboard/dashboard.route';
import {
  CreateApiKeyDocument,
  GenerateCodeDocument,
  GenerateTrackedCodeDocument,
  RegisterPageDocument,
  UpdatePageDocument,
} from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { launchChromium } from './support/chromium';
import { executeOk } from './support/graphql-client';
import { eventually, waitForSubscribers } from './support/subscriptions';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy';
import { postScans, scanOf } from './support/webhook';
import type { SimulatedScan } from '../src/webhook/simulated-webhook';
import { ScanKind } from '../src/scans/scan-kind';

reportSkippedDatabases();

const REPO = path.resolve(__dirname, '..');
const BUNDLE_INDEX = path.join(REPO, 'dist', 'dashboard', 'index.html');
const OTHER_PAGE_ID = '2222222222';
const ADMIN = { authorization: 'Bearer dashboard-e2e-admin' };
/** Waits on page conditions: generous for a loaded CI machine, far below the test timeout. */
const UI_TIMEOUT = 15_000;
const DAY_MS = 86_400_000;

const SCREENSHOTS = process.env.DASHBOARD_SCREENSHOTS ?? mkdtempSync(path.join(os.tmpdir(), 'dashboard-screenshots-'));
mkdirSync(SCREENSHOTS, { recursive: true });

/** The codes of the page the VIEWER key sees: [ref, label]. */
const TABLES: [string, string][] = [
  ['table-1', 'Table 1'],
  ['table-2', 'Table 2'],
  ['table-3', 'Table 3'],
  ['table-4', 'Table 4'],
  ['bar-counter', 'Bar counter'],
  ['menu-card', 'Menu card'],
];
/** The REDIRECT codes of that page: [ref, label, visits of their link]. */
const REDIRECTS: [string, string, number][] = [
  ['window-poster', 'Window poster', 24],
  ['spring-flyer', 'Spring flyer', 15],
];
/** Who scans table 2 three times today: one person, three scans. */
const REGULAR = 'psid-regular-guest';
const OTHER_REF = 'other-page-secret';

function ensureBundle(): void {
  if (existsSync(BUNDLE_INDEX)) return;
  const result = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'build-dashboard.mjs')], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (result.status !== 0) throw new Error(`node scripts/build-dashboard.mjs failed:\n${result.stdout}\n${result.stderr}`);
}

/** A deterministic spread of scans over the last 30 days, some of them today, some of refs without a code. */
function history(now: number): SimulatedScan[] {
  const midnight = new Date(now);
  midnight.setHours(0, 0, 0, 0);
  const scans: SimulatedScan[] = [];
  let seed = 7;
  const next = () => {
    seed = (seed * 48271) % 2147483647;
    return seed / 2147483647;
  };
  const refs = [...TABLES, ...REDIRECTS].map(([ref]) => ref);
  refs.forEach((ref, index) => {
    const weight = refs.length - index;
    for (let day = 29; day >= 1; day -= 1) {
      const count = Math.floor(next() * weight * 0.8 + (day % 7 === 2 ? weight / 2 : 0));
      for (let scan = 0; scan < count; scan += 1) {
        scans.push(scanOf(TEST_PAGE_ID, { ref, timestamp: midnight.getTime() - day * DAY_MS + Math.floor(next() * DAY_MS), kind: pick() }));
      }
    }
    // Today, before now: spread over the hours gone by.
    const today = Math.max(1, Math.floor(weight / 2));
    for (let scan = 0; scan < today; scan += 1) {
      scans.push(
        scanOf(TEST_PAGE_ID, {
          ref,
          timestamp: midnight.getTime() + Math.floor(next() * (now - midnight.getTime() - 60_000)),
          kind: pick(),
        }),
      );
    }
  });
  // A regular: three scans of one code today, one person (the first one started the conversation).
  const elapsed = now - midnight.getTime() - 60_000;
  for (const [index, kind] of [ScanKind.POSTBACK, ScanKind.REFERRAL, ScanKind.REFERRAL].entries()) {
    scans.push(
      scanOf(TEST_PAGE_ID, {
        ref: 'table-2',
        senderPsid: REGULAR,
        timestamp: midnight.getTime() + Math.floor((elapsed * (index + 1)) / 4),
        kind,
      }),
    );
  }
  for (const [ref, count] of [
    ['old-menu-2025', 5],
    ['tabel-9', 2],
  ] as const) {
    for (let scan = 0; scan < count; scan += 1) scans.push(scanOf(TEST_PAGE_ID, { ref, timestamp: now - (scan + 1) * 3_600_000 }));
  }
  return scans;

  function pick(): ScanKind {
    return next() < 0.3 ? ScanKind.POSTBACK : ScanKind.REFERRAL;
  }
}

/** What a page did on the network and in its console. */
interface PageWatch {
  /** where the page was opened */
  origin: string;
  requested: string[];
  webSockets: string[];
  /** variables of each graphql-ws subscribe message the page sent */
  subscribed: Record<string, unknown>[];
  problems: string[];
}

async function openDashboard(context: BrowserContext, origin: string): Promise<{ page: Page; watched: PageWatch }> {
  const page = await context.newPage();
  const watched: PageWatch = { origin, requested: [], webSockets: [], subscribed: [], problems: [] };
  page.on('request', (request) => watched.requested.push(request.url()));
  page.on('websocket', (socket) => {
    watched.webSockets.push(socket.url());
    socket.on('framesent', ({ payload }) => {
      if (typeof payload !== 'string') return;
      const message = JSON.parse(payload) as { type?: string; payload?: { variables?: Record<string, unknown> } };
      if (message.type === 'subscribe') watched.subscribed.push(message.payload?.variables ?? {});
    });
  });
  page.on('pageerror', (error) => watched.problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') watched.problems.push(`console: ${message.text()}`);
  });
  await page.goto(`${origin}/dashboard`);
  return { page, watched };
}

async function enterKey(page: Page, key: string): Promise<void> {
  await page.locator('#dashboard-api-key').fill(key, { timeout: UI_TIMEOUT });
  await page.locator('.key-form button[type="submit"]').click({ timeout: UI_TIMEOUT });
}

function codeRow(page: Page, ref: string) {
  return page.locator(`tr[data-ref="${ref}"]`);
}

/** The number an element shows (formatted for the browser's locale): its digits. */
async function shownNumber(locator: Locator): Promise<number> {
  return Number((await locator.innerText()).replace(/\D/g, ''));
}

/** A tile of today's totals, by its data-total. */
function tile(page: Page, field: string): Locator {
  return page.locator(`[data-total="${field}"] .tile-value`);
}

/** Local midnights of the browser's time zone (the dashboard's days), `first` to `last` days from today. */
function browserMidnights(page: Page, first: number, last: number): Promise<number[]> {
  return page.evaluate(
    ([from, to]) => {
      const now = new Date();
      const midnights: number[] = [];
      for (let day = from; day <= to; day += 1) midnights.push(new Date(now.getFullYear(), now.getMonth(), now.getDate() + day).getTime());
      return midnights;
    },
    [first, last] as const,
  );
}

/**
 * What a code's sparkline last drew: uPlot's own data, which the chart's draw hook writes to its
 * box (data-drawn), as day starts in milliseconds and scans per day.
 */
async function drawnSparkline(page: Page, ref: string): Promise<{ starts: number[]; values: number[] }> {
  const box = codeRow(page, ref).locator('.sparkline[data-drawn]');
  const [seconds, values] = JSON.parse((await box.getAttribute('data-drawn', { timeout: UI_TIMEOUT })) ?? '[]') as number[][];
  return { starts: seconds.map((start) => start * 1000), values };
}

async function shownRefs(page: Page): Promise<string[]> {
  return page.locator('tr[data-code-id]').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-ref') ?? ''));
}

/**
 * Resizes the viewport and waits until the charts have followed their boxes (a ResizeObserver
 * resizes them, a moment later) and nothing is wider than the screen.
 */
async function resize(page: Page, width: number, height: number): Promise<void> {
  await page.setViewportSize({ width, height });
  await page.waitForFunction(
    () =>
      document.documentElement.scrollWidth <= window.innerWidth &&
      [...document.querySelectorAll('.sparkline, .hour-chart')].every((box) => {
        const chart = box.querySelector('.uplot');
        return chart === null || Math.abs(chart.getBoundingClientRect().width - box.clientWidth) < 2;
      }),
    undefined,
    { timeout: UI_TIMEOUT },
  );
}

/** What the screen shows, and the whole page under `<name>-full`. */
async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-full.png`), fullPage: true });
}

describe.each(DATABASE_KINDS)('the dashboard at /dashboard on %s', (kind) => {
  let gateway: TestGateway;
  let browser: Browser;
  let viewerKey: string;
  /** every scan of the test page posted before the browser opened */
  let posted: SimulatedScan[];
  const pages: PageWatch[] = [];
  /** the origin of the page opened through the TCP proxy, whose connections the test cuts */
  let proxyOrigin: string | undefined;

  beforeAll(async () => {
    ensureBundle();
    gateway = await startTestGateway(kind, { ADMIN_API_KEY: ADMIN.authorization.slice('Bearer '.length) });
    await executeOk(gateway.url, UpdatePageDocument, { input: { id: TEST_PAGE_ID, name: 'Café Lumière' } }, ADMIN);
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: OTHER_PAGE_ID, name: 'Another bistro' } }, ADMIN);
    for (const [ref, label] of TABLES) {
      await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref }, label, imageSize: 100 } }, ADMIN);
    }
    const links: string[] = [];
    for (const [ref, label] of REDIRECTS) {
      const { generateCode } = await executeOk(
        gateway.url,
        GenerateTrackedCodeDocument,
        { input: { data: { ref }, label, imageSize: 100, tracking: 'REDIRECT' } },
        ADMIN,
      );
      links.push(generateCode.link);
    }
    await executeOk(
      gateway.url,
      GenerateCodeDocument,
      { input: { pageId: OTHER_PAGE_ID, data: { ref: OTHER_REF }, imageSize: 100 } },
      ADMIN,
    );
    viewerKey = (
      await executeOk(
        gateway.url,
        CreateApiKeyDocument,
        { input: { name: 'lobby screen', role: 'VIEWER', pageIds: [TEST_PAGE_ID] } },
        ADMIN,
      )
    ).createApiKey.key;

    posted = history(Date.now());
    for (let start = 0; start < posted.length; start += 100) {
      expect((await postScans(gateway.url, posted.slice(start, start + 100))).status).toBe(200);
    }
    expect((await postScans(gateway.url, [scanOf(OTHER_PAGE_ID, { ref: OTHER_REF })])).status).toBe(200);
    // People who open the redirect links; about half of them go on to scan.
    for (const [index, link] of links.entries()) {
      for (let visit = 0; visit < REDIRECTS[index][2]; visit += 1) {
        await fetch(`${gateway.url}${new URL(link).pathname}`, { redirect: 'manual' });
      }
    }
    // Visits are written once a second: all of them before the dashboard first asks.
    await gateway.services.visits.flush();
    browser = await launchChromium();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('serves the page without a key, with its CSP, and its assets for a year', async () => {
    const res = await fetch(`${gateway.url}/dashboard`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    const assets = [...(await res.text()).matchAll(/(?:src|href)="(\/dashboard\/assets\/[^"]+)"/g)].map((match) => match[1]);
    expect(assets).toHaveLength(2);
    for (const asset of assets) {
      const assetRes = await fetch(`${gateway.url}${asset}`);
      expect(assetRes.status).toBe(200);
      expect(assetRes.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    }
  });

  describe('with the VIEWER key of one page', () => {
    let context: BrowserContext;
    let page: Page;

    beforeAll(async () => {
      context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      const opened = await openDashboard(context, gateway.url);
      page = opened.page;
      pages.push(opened.watched);
    }, 60_000);

    afterAll(async () => {
      await context?.close();
    });

    it("asks for the key, then shows that page's codes and not another page's", async () => {
      await page.locator('#dashboard-api-key').waitFor({ timeout: UI_TIMEOUT });
      await enterKey(page, viewerKey);
      await page.locator('#dashboard-page-name', { hasText: 'Café Lumière' }).waitFor({ timeout: UI_TIMEOUT });
      await codeRow(page, 'table-1').waitFor({ timeout: UI_TIMEOUT });
      const refs = await shownRefs(page);
      expect([...refs].sort()).toEqual([...TABLES, ...REDIRECTS].map(([ref]) => ref).sort());
      expect(refs).not.toContain(OTHER_REF);
      await expect(page.locator('body').innerText()).resolves.not.toContain('Another bistro');
      // The orphan refs of the page, most scanned first.
      await expect(
        page.locator('li[data-orphan-ref]').evaluateAll((items) => items.map((item) => item.getAttribute('data-orphan-ref'))),
      ).resolves.toEqual(['old-menu-2025', 'tabel-9']);
      // The funnel lists the REDIRECT codes only.
      await expect(page.locator('.funnel-list li').count()).resolves.toBe(REDIRECTS.length);
    });

    it("draws each code's scans per day of the last 30 days in its sparkline", async () => {
      const codes = [...TABLES, ...REDIRECTS].map(([ref]) => ref);
      await page.waitForFunction(
        (count) => document.querySelectorAll('tr[data-code-id] .sparkline[data-drawn]').length === count,
        codes.length,
        { timeout: UI_TIMEOUT },
      );
      // The dashboard's days: the browser's local midnights, 29 days ago to tomorrow's.
      const midnights = await browserMidnights(page, -29, 1);
      for (const ref of codes) {
        const { starts, values } = await drawnSparkline(page, ref);
        expect(starts).toEqual(midnights.slice(0, 30));
        const expected = midnights
          .slice(0, 30)
          .map(
            (start, day) =>
              posted.filter((scan) => scan.ref === ref && scan.timestamp >= start && scan.timestamp < midnights[day + 1]).length,
          );
        // Scans on days before today, so the comparison says something for every code.
        expect(expected.slice(0, 29).some((count) => count > 0)).toBe(true);
        expect({ ref, values }).toEqual({ ref, values: expected });
      }
    });

    it("shows today's totals: scans, first-time, returning, people and visits", async () => {
      const [start, end] = await browserMidnights(page, 0, 1);
      const today = posted.filter((scan) => scan.pageId === TEST_PAGE_ID && scan.timestamp >= start && scan.timestamp < end);
      const firstTime = today.filter((scan) => scan.kind === ScanKind.POSTBACK).length;
      const expected = {
        total: today.length,
        firstTime,
        returning: today.length - firstTime,
        uniquePeople: new Set(today.map((scan) => scan.senderPsid)).size,
        visits: REDIRECTS.reduce((sum, [, , visits]) => sum + visits, 0),
      };
      // The regular's three scans are one person: people and scans differ.
      expect(expected.uniquePeople).toBe(expected.total - 2);
      expect(expected.firstTime).toBeGreaterThan(0);
      expect(expected.returning).toBeGreaterThan(0);
      await page.locator('[data-total="visits"] .tile-value', { hasText: /\d/ }).waitFor({ timeout: UI_TIMEOUT });
      const shown: Record<string, number> = {};
      for (const field of Object.keys(expected)) shown[field] = await shownNumber(tile(page, field));
      expect(shown).toEqual(expected);
    });

    it('shows the visits, scans and rate of each REDIRECT code in the funnel', async () => {
      const funnel = REDIRECTS.map(([ref, label, visits]) => ({
        label,
        visits,
        scans: posted.filter((scan) => scan.pageId === TEST_PAGE_ID && scan.ref === ref).length,
      }));
      const widest = Math.max(...funnel.map(({ visits, scans }) => Math.max(visits, scans)));
      for (const { label, visits, scans } of funnel) {
        const item = page.locator('.funnel-list li', { has: page.locator('.funnel-name', { hasText: label }) });
        await expect(item.locator('.bars').getAttribute('aria-label')).resolves.toBe(`${visits} visits, ${scans} scans`);
        // The bars are drawn to one scale, the widest of them all.
        const widths = await item.locator('.bar').evaluateAll((bars) => bars.map((bar) => parseFloat((bar as HTMLElement).style.width)));
        expect(widths[0]).toBeCloseTo((visits / widest) * 100, 2);
        expect(widths[1]).toBeCloseTo((scans / widest) * 100, 2);
        const rate = await item.locator('.funnel-rate').innerText();
        expect(rate).toContain('%');
        expect(Number(rate.replace(/\D/g, ''))).toBe(Math.round((scans / visits) * 100));
      }
      // The most visited first, and the sums with their rate above the list.
      await expect(page.locator('.funnel-list .funnel-name').allInnerTexts()).resolves.toEqual(
        [...funnel].sort((a, b) => b.visits - a.visits).map(({ label }) => label),
      );
      const visits = funnel.reduce((sum, code) => sum + code.visits, 0);
      const scans = funnel.reduce((sum, code) => sum + code.scans, 0);
      const sums = await page.locator('.funnel-summary strong').allInnerTexts();
      expect(sums.map((text) => Number(text.replace(/\D/g, '')))).toEqual([visits, scans]);
      await expect(shownNumber(page.locator('.funnel-summary .rate'))).resolves.toBe(Math.round((scans / visits) * 100));
    });

    it('sorts the codes by name, by last scan and by scans', async () => {
      await page.locator('button.sort[data-sort="name"]').click();
      const byName = await page.locator('tr[data-code-id] .code-label').allInnerTexts();
      expect(byName).toEqual([...byName].sort((a, b) => a.localeCompare(b, undefined, { numeric: true, sensitivity: 'base' })));
      await page.locator('button.sort[data-sort="scans"]').click();
      const counts = (await page.locator('tr[data-code-id] .code-scans').allInnerTexts()).map((text) => Number(text.replace(/\D/g, '')));
      expect(counts).toEqual([...counts].sort((a, b) => b - a));
      await expect(page.locator('th[aria-sort="descending"] button.sort').getAttribute('data-sort')).resolves.toBe('scans');
    });

    it('shows a scan posted to the webhook in the count and in the feed', async () => {
      await page.locator('.live-badge[data-state="live"]').waitFor({ timeout: UI_TIMEOUT });
      await waitForSubscribers(gateway, 1, UI_TIMEOUT);
      const before = Number((await codeRow(page, 'table-3').locator('.code-scans').innerText()).replace(/\D/g, ''));
      const todayBefore = Number((await page.locator('[data-total="total"] .tile-value').innerText()).replace(/\D/g, ''));
      const [firstTimeBefore, returningBefore, peopleBefore] = [
        await shownNumber(tile(page, 'firstTime')),
        await shownNumber(tile(page, 'returning')),
        await shownNumber(tile(page, 'uniquePeople')),
      ];
      const sparkBefore = (await drawnSparkline(page, 'table-3')).values;
      const scan = scanOf(TEST_PAGE_ID, { ref: 'table-3', timestamp: Date.now(), kind: ScanKind.POSTBACK });
      expect((await postScans(gateway.url, [scan])).status).toBe(200);

      await codeRow(page, 'table-3')
        .locator('.code-scans', { hasText: new RegExp(`^${before + 1}$`) })
        .waitFor({ timeout: UI_TIMEOUT });
      const newest = page.locator('.feed-item').first();
      await newest.locator('.feed-code', { hasText: 'Table 3' }).waitFor({ timeout: UI_TIMEOUT });
      await expect(newest.locator('.kind').innerText()).resolves.toBe('first time');
      await page
        .locator('[data-total="total"] .tile-value', { hasText: new RegExp(`^${todayBefore + 1}$`) })
        .waitFor({ timeout: UI_TIMEOUT });
      // A first-time scan of someone new: first-time and people grow, returning does not.
      await expect(shownNumber(tile(page, 'firstTime'))).resolves.toBe(firstTimeBefore + 1);
      await expect(shownNumber(tile(page, 'returning'))).resolves.toBe(returningBefore);
      await tile(page, 'uniquePeople')
        .filter({ hasText: new RegExp(`^${peopleBefore + 1}$`) })
        .waitFor({ timeout: UI_TIMEOUT });
      // The sparkline draws it on today, its last day.
      await page.waitForFunction(
        (expected) => {
          const drawn = document.querySelector('tr[data-ref="table-3"] .sparkline')?.getAttribute('data-drawn');
          return drawn !== null && drawn !== undefined && JSON.stringify((JSON.parse(drawn) as number[][])[1]) === expected;
        },
        JSON.stringify([...sparkBefore.slice(0, -1), sparkBefore[sparkBefore.length - 1] + 1]),
        { timeout: UI_TIMEOUT },
      );
      // A scan of another page never reaches this key's dashboard.
      expect((await postScans(gateway.url, [scanOf(OTHER_PAGE_ID, { ref: OTHER_REF, timestamp: Date.now() })])).status).toBe(200);
      const feedIds = await page.locator('.feed-item').evaluateAll((items) => items.map((item) => item.getAttribute('data-scan-id')));
      expect(new Set(feedIds).size).toBe(feedIds.length);
    });

    it('shows a scan of a ref without a code in the orphan refs at once, without a reload', async () => {
      // Gone after a reload: still there at the end, the page was never loaded again.
      await page.evaluate(() => Object.assign(window, { dashboardE2eNoReload: true }));
      await expect(shownNumber(page.locator('.orphans .count'))).resolves.toBe(2);
      const orphan = 'flyer-2026-spring';
      expect(
        (
          await postScans(gateway.url, [
            scanOf(TEST_PAGE_ID, { ref: orphan, timestamp: Date.now() }),
            scanOf(TEST_PAGE_ID, { ref: 'tabel-9', timestamp: Date.now() + 1 }),
          ])
        ).status,
      ).toBe(200);
      await page.locator(`li[data-orphan-ref="${orphan}"]`).waitFor({ timeout: UI_TIMEOUT });
      await page.locator('li[data-orphan-ref="tabel-9"] .orphan-scans', { hasText: /^3$/ }).waitFor({ timeout: UI_TIMEOUT });
      await expect(
        page
          .locator('li[data-orphan-ref]')
          .evaluateAll((items) =>
            items.map((item) => [item.getAttribute('data-orphan-ref'), item.querySelector('.orphan-scans')?.textContent]),
          ),
      ).resolves.toEqual([
        ['old-menu-2025', '5'],
        ['tabel-9', '3'],
        [orphan, '1'],
      ]);
      await expect(shownNumber(page.locator('.orphans .count'))).resolves.toBe(3);
      await expect(page.evaluate(() => 'dashboardE2eNoReload' in window)).resolves.toBe(true);
    });

    it('writes screenshots at desktop, TV and phone widths', async () => {
      // Let the highlight of the last scan fade before the pictures are taken.
      await page.waitForFunction(
        () => document.getAnimations().every((animation) => animation.effect?.getTiming().iterations === Infinity),
        undefined,
        {
          timeout: UI_TIMEOUT,
        },
      );
      await screenshot(page, 'dashboard-desktop');
      await page.emulateMedia({ colorScheme: 'dark' });
      await screenshot(page, 'dashboard-desktop-dark');
      await page.emulateMedia({ colorScheme: 'light' });
      await resize(page, 1920, 1080);
      await screenshot(page, 'dashboard-tv');
      // Nothing wider than the phone once the charts have followed: no sideways scrolling.
      await resize(page, 390, 844);
      await screenshot(page, 'dashboard-phone');
      // The phone hides the last-scan column and offers the order as a list.
      await page.locator('.sort-choice select').selectOption('last');
      await expect(page.locator('th[aria-sort="descending"] button.sort').getAttribute('data-sort')).resolves.toBe('last');
      await page.locator('.sort-choice select').selectOption('scans');
      await resize(page, 1440, 900);
    });

    it('keeps the key for the tab: a reload opens the dashboard at once', async () => {
      await page.reload();
      await codeRow(page, 'table-1').waitFor({ timeout: UI_TIMEOUT });
      await expect(page.locator('#dashboard-api-key').count()).resolves.toBe(0);
      await expect(page.evaluate(() => sessionStorage.getItem('messenger-code-gateway:api-key'))).resolves.toBe(viewerKey);
    });
  });

  it('says clearly when the key is wrong', async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    try {
      const { page, watched } = await openDashboard(context, gateway.url);
      pages.push(watched);
      await enterKey(page, 'mcg_not-a-real-key');
      const alert = page.locator('#dashboard-key-message[role="alert"]');
      await alert.waitFor({ timeout: UI_TIMEOUT });
      await expect(alert.innerText()).resolves.toMatch(/refused this key/);
      await expect(page.locator('tr[data-code-id]').count()).resolves.toBe(0);
      await screenshot(page, 'dashboard-wrong-key');
    } finally {
      await context.close();
    }
  });

  it('gives a key of every page a picker, all pages at once included, kept in the URL', async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    try {
      const { page, watched } = await openDashboard(context, gateway.url);
      pages.push(watched);
      await enterKey(page, ADMIN.authorization.slice('Bearer '.length));
      const picker = page.locator('select#dashboard-page');
      await picker.waitFor({ timeout: UI_TIMEOUT });
      await expect(picker.locator('option').allInnerTexts()).resolves.toEqual(['All pages', 'Café Lumière', 'Another bistro']);
      await codeRow(page, OTHER_REF).waitFor({ timeout: UI_TIMEOUT });
      await codeRow(page, 'table-1').waitFor({ timeout: UI_TIMEOUT });

      await picker.selectOption({ label: 'Another bistro' });
      await page.waitForFunction(
        (ref) => {
          // While the page's codes load, there are no rows at all: wait for them.
          const rows = [...document.querySelectorAll('tr[data-code-id]')];
          return rows.length > 0 && rows.every((row) => row.getAttribute('data-ref') === ref);
        },
        OTHER_REF,
        {
          timeout: UI_TIMEOUT,
        },
      );
      await expect(shownRefs(page)).resolves.toEqual([OTHER_REF]);
      expect(new URL(page.url()).hash).toBe(`#page=${OTHER_PAGE_ID}`);
      await page.reload();
      await codeRow(page, OTHER_REF).waitFor({ timeout: UI_TIMEOUT });
      await expect(page.locator('select#dashboard-page').inputValue()).resolves.toBe(OTHER_PAGE_ID);
    } finally {
      await context.close();
    }
  });

  it('opens at once on an open gateway, with no key', async () => {
    const open = await startTestGateway(kind);
    await executeOk(open.url, GenerateCodeDocument, { input: { data: { ref: 'open-door' }, label: 'Front door', imageSize: 100 } });
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    try {
      const { page, watched } = await openDashboard(context, open.url);
      pages.push(watched);
      await codeRow(page, 'open-door').waitFor({ timeout: UI_TIMEOUT });
      await expect(page.locator('#dashboard-api-key').count()).resolves.toBe(0);
      await page.locator('.key-state', { hasText: 'open gateway' }).waitFor({ timeout: UI_TIMEOUT });
    } finally {
      await context.close();
    }
  });

  describe('when the connection drops', () => {
    let proxy: TcpProxy;
    let context: BrowserContext;
    let page: Page;
    let watched: PageWatch;

    beforeAll(async () => {
      // The browser reaches the gateway through a TCP proxy that can cut every connection.
      proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(gateway.url).port) });
      context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      proxyOrigin = `http://127.0.0.1:${proxy.port}`;
      ({ page, watched } = await openDashboard(context, proxyOrigin));
      pages.push(watched);
      await enterKey(page, viewerKey);
      await page.locator('.live-badge[data-state="live"]').waitFor({ timeout: UI_TIMEOUT });
    }, 60_000);

    afterAll(async () => {
      await context?.close();
      await proxy?.close();
    });

    /** How many times the feed shows the scan of each ref. */
    async function feedCounts(refs: string[]): Promise<number[]> {
      const shown = await page.locator('.feed-item .feed-code').allInnerTexts();
      return refs.map((ref) => shown.filter((text) => text === ref).length);
    }

    it('resumes from the last streamCursor after a reconnect: every scan stored meanwhile is shown once', async () => {
      const before = await postAndShow('drop-before');
      const subscribedBefore = watched.subscribed.length;
      proxy.cutAll();
      await page.locator('.live-badge[data-state="reconnecting"]').waitFor({ timeout: UI_TIMEOUT });
      const table2 = Number((await codeRow(page, 'table-2').locator('.code-scans').innerText()).replace(/\D/g, ''));
      // More than the dashboard's first load of recent scans (30): only the replay brings them all.
      const gap = Array.from({ length: 35 }, (_, index) => `drop-gap-${index + 1}`);
      const now = Date.now();
      const gapScans = [
        ...gap.map((ref, index) => scanOf(TEST_PAGE_ID, { ref, timestamp: now + index })),
        scanOf(TEST_PAGE_ID, { ref: 'table-2', timestamp: now + 40 }),
      ];
      expect((await postScans(gateway.url, gapScans)).status).toBe(200);
      proxy.restore();

      await page.locator('.live-badge[data-state="live"]').waitFor({ timeout: 30_000 });
      await codeRow(page, 'table-2')
        .locator('.code-scans', { hasText: new RegExp(`^${table2 + 1}$`) })
        .waitFor({ timeout: UI_TIMEOUT });
      await page.waitForFunction(
        (refs) => {
          const shown = new Set([...document.querySelectorAll('.feed-item .feed-code')].map((element) => element.textContent));
          return refs.every((ref) => shown.has(ref));
        },
        gap,
        { timeout: UI_TIMEOUT },
      );
      // The new subscription resumed from the cursor of the last scan received before the cut.
      const resubscribed = watched.subscribed.slice(subscribedBefore);
      expect(resubscribed.length).toBeGreaterThan(0);
      for (const variables of resubscribed) expect(variables.after).toEqual(expect.any(String));

      const after = await postAndShow('drop-after');
      await expect(feedCounts([before, ...gap, after])).resolves.toEqual(Array(gap.length + 2).fill(1));
      const feedIds = await page.locator('.feed-item').evaluateAll((items) => items.map((item) => item.getAttribute('data-scan-id')));
      expect(new Set(feedIds).size).toBe(feedIds.length);
    });

    /** Posts a scan of an orphan ref and waits for the dashboard to show it live. */
    async function postAndShow(ref: string): Promise<string> {
      // This page's subscription is the only one (the other pages are closed): the scan goes to it live.
      await eventually(() => gateway.services.feed.subscriberCount === 1, UI_TIMEOUT, "this page's subscription alone");
      expect((await postScans(gateway.url, [scanOf(TEST_PAGE_ID, { ref, timestamp: Date.now() })])).status).toBe(200);
      await page.locator('.feed-item .feed-code', { hasText: ref }).waitFor({ timeout: UI_TIMEOUT });
      return ref;
    }
  });

  it('made no request to any other origin and logged no error but refusals and the cut', () => {
    expect(pages).toHaveLength(5);
    for (const watched of pages) {
      const network = watched.requested.filter((url) => !url.startsWith('data:') && !url.startsWith('blob:'));
      expect(network.length).toBeGreaterThan(0);
      expect(network.filter((url) => new URL(url).origin !== watched.origin)).toEqual([]);
      expect(watched.webSockets.filter((url) => new URL(url).host !== new URL(watched.origin).host)).toEqual([]);
      // Chromium logs each 401 itself (the wrong key's, the first look without a key); on the
      // page behind the proxy, each WebSocket it could not open and each request (a reload of
      // today's totals) that the cut broke.
      const refused = /^console: Failed to load resource: the server responded with a status of 401 \(Unauthorized\)$/;
      const cut = /^console: (WebSocket connection to '[^']+' failed|Failed to load resource: net::ERR_[A-Z_]+)/;
      const behindProxy = watched.origin === proxyOrigin;
      expect(watched.problems.filter((problem) => !refused.test(problem) && !(behindProxy && cut.test(problem)))).toEqual([]);
    }
  });
});

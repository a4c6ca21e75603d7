/**
 * Issue 13, faults: the database refusing writes. SQLite locked by another process past the
 * busy timeout; PostgreSQL's connections cut (through a TCP proxy) or its backends terminated
 * mid-stream. Webhooks answer 5xx (Meta redelivers), nothing is half-written, and the same
 * gateway stores again once the database is back.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { CodeDocument, GenerateCodeDocument } from '../generated/graphql';
import { createTestDatabase, reportSkippedDatabases, type TestDatabase } from '../support/databases';
import { startTestGateway, TEST_PAGE_ID, type TestGateway } from '../support/gateway';
import { executeOk } from '../support/graphql-client';
import { countMismatches, openDatabase, storedScanIds, type DatabaseReader } from '../support/scan-ledger';
import { holdSqliteLock } from '../support/sqlite-lock';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { scanOf } from '../support/webhook';
import {
  answered,
  postForReceipt,
  stream,
  webhooksOf,
  webhookOf,
  type StreamedWebhook,
  type WebhookOutcome,
} from '../support/webhook-stream';

reportSkippedDatabases();

const postgresUrl = process.env.TEST_DATABASE_URL;

jest.setTimeout(90_000);

const statusOf = (outcome: WebhookOutcome | undefined) => (answered(outcome) ? outcome.status : 'no answer');

/** Times of the stored scans (each simulated scan has its own). */
async function storedTimes(reader: DatabaseReader): Promise<Set<number>> {
  return new Set(
    (await reader.query<{ occurred_at: number | string }>('SELECT occurred_at FROM scan')).map((row) => Number(row.occurred_at)),
  );
}

async function generate(gateway: TestGateway, ref: string): Promise<string> {
  return (await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref }, imageSize: 100 } })).generateCode.id;
}

async function scanCount(gateway: TestGateway, id: string): Promise<number | undefined> {
  return (await executeOk(gateway.url, CodeDocument, { id })).code?.scanCount;
}

describe('SQLite locked by another process past the busy timeout', () => {
  it('answers 500 while locked, writes nothing, and stores the redelivery once the lock is gone', async () => {
    // A wait of 2 s rather than the default 5 s: the same path, a shorter test.
    const gateway = await startTestGateway('sqlite', { LOG_LEVEL: 'silent', DATABASE_BUSY_TIMEOUT_MS: '2000' });
    const file = gateway.database.url.slice('sqlite:'.length);
    const id = await generate(gateway, 'locked');
    const before = postForReceipt(gateway.url, webhookOf([scanOf(TEST_PAGE_ID, { ref: 'locked' })]).body);
    expect(await before).toMatchObject({ status: 200 });

    const lock = await holdSqliteLock(file);
    const refused = webhookOf([scanOf(TEST_PAGE_ID, { ref: 'locked' }), scanOf(TEST_PAGE_ID, { ref: 'other' })]);
    const alsoRefused = [webhookOf([scanOf(TEST_PAGE_ID, { ref: 'locked' })]), webhookOf([scanOf(TEST_PAGE_ID, { ref: 'other' })])];
    // The writer waits for the lock (DATABASE_BUSY_TIMEOUT_MS) on a timer, then SQLITE_BUSY: the process keeps serving meanwhile.
    let answered = 0;
    const during = [refused, ...alsoRefused].map((webhook) =>
      postForReceipt(gateway.url, webhook.body).then((outcome) => {
        answered += 1;
        return outcome;
      }),
    );
    const health = await fetch(`${gateway.url}/healthz`);
    expect({ health: health.status, webhooksAnsweredBeforeIt: answered }).toEqual({ health: 200, webhooksAnsweredBeforeIt: 0 });
    expect((await Promise.all(during)).map(statusOf)).toEqual([500, 500, 500]);
    const reader = await openDatabase(gateway.database.url);
    try {
      // Read beside the lock (WAL): nothing of the refused webhook, the counts as they were.
      expect((await storedScanIds(reader)).size).toBe(1);
      expect(await countMismatches(reader)).toEqual([]);

      await lock.release();
      // The same process, no restart: Meta's retry of the refused webhook is stored, then the next one.
      expect(await postForReceipt(gateway.url, refused.body)).toMatchObject({ status: 200, receipt: { stored: 2, duplicates: 0 } });
      const next = webhookOf([scanOf(TEST_PAGE_ID, { ref: 'locked' })]);
      expect(await postForReceipt(gateway.url, next.body)).toMatchObject({ status: 200, receipt: { stored: 1 } });
      expect((await storedScanIds(reader)).size).toBe(4);
      expect(await countMismatches(reader)).toEqual([]);
    } finally {
      await reader.close();
    }
    expect(await scanCount(gateway, id)).toBe(3);
  });
});

if (!postgresUrl) {
  test.skip('PostgreSQL connection cut or terminated (skipped: TEST_DATABASE_URL is not set)', () => undefined);
} else {
  describe('PostgreSQL refusing writes mid-stream', () => {
    /**
     * Streams `count` webhooks from several senders while `fault` strikes (called once the
     * first answers are in, it resolves when the database is back), then checks what every
     * fault must leave: each 200 stored, nothing half-written, every redelivery stored once.
     * Answers with the outcomes, for what each fault adds.
     */
    async function streamThrough(
      gateway: TestGateway,
      webhooks: StreamedWebhook[],
      fault: (outcomes: () => (WebhookOutcome | undefined)[]) => Promise<void>,
    ): Promise<(WebhookOutcome | undefined)[]> {
      const half = Math.floor(webhooks.length / 2);
      const seen: (WebhookOutcome | undefined)[] = [];
      let struck: Promise<void> | undefined;
      // The first half while the fault strikes and heals, the second half after.
      const firstHalf = stream(gateway.url, webhooks.slice(0, half), 6, (outcome, index) => {
        seen[index] = outcome;
        if (!struck && seen.filter((o) => statusOf(o) === 200).length >= 10) struck = fault(() => seen);
      });
      const early = await firstHalf;
      await struck;
      const late = await stream(gateway.url, webhooks.slice(half), 6);
      const outcomes = [...early, ...late];

      const reader = await openDatabase(gateway.database.url);
      try {
        const times = await storedTimes(reader);
        const promised = outcomes.flatMap((outcome, index) => (statusOf(outcome) === 200 ? webhooks[index].scans : []));
        expect(promised.filter((scan) => !times.has(scan.timestamp))).toEqual([]);
        expect(await countMismatches(reader)).toEqual([]);
        // The fault is over: the same gateway answers 200 again, without a restart.
        expect(late.map(statusOf)).toEqual(late.map(() => 200));

        // Meta redelivers what was not acknowledged: all of it stored, each scan once.
        const retried = await stream(
          gateway.url,
          webhooks.filter((_, index) => statusOf(outcomes[index]) !== 200),
          6,
        );
        expect(retried.map(statusOf)).toEqual(retried.map(() => 200));
        const all = webhooks.flatMap((webhook) => webhook.scans);
        expect([...(await storedTimes(reader))].sort()).toEqual(all.map((scan) => scan.timestamp).sort());
        expect(await countMismatches(reader)).toEqual([]);
      } finally {
        await reader.close();
      }
      return outcomes;
    }

    /** A new test database, and its URL through a TCP proxy in front of PostgreSQL. */
    const behindProxy = async (): Promise<{ proxy: TcpProxy; database: TestDatabase; proxiedUrl: string }> => {
      const server = new URL(postgresUrl);
      const proxy = await startTcpProxy({ host: server.hostname || '127.0.0.1', port: Number(server.port || 5432) });
      const database = await createTestDatabase('postgres');
      const proxied = new URL(database.url);
      proxied.hostname = '127.0.0.1';
      proxied.port = String(proxy.port);
      return { proxy, database, proxiedUrl: proxied.toString() };
    };

    it('answers 500 while its connections are cut, and stores again once they are back', async () => {
      const { proxy, database, proxiedUrl } = await behindProxy();
      try {
        const gateway = await startTestGateway({ ...database, url: proxiedUrl }, { LOG_LEVEL: 'silent' });
        const id = await generate(gateway, 'cut');
        const scans = Array.from({ length: 240 }, (_, index) => scanOf(TEST_PAGE_ID, { ref: index % 2 === 0 ? 'cut' : 'orphan' }));
        const webhooks = webhooksOf(scans, 3);
        const outcomes = await streamThrough(gateway, webhooks, async (seen) => {
          proxy.cutAll();
          // The cut lasts until several webhooks were refused.
          const refusedBefore = seen().filter((o) => answered(o) && o.status >= 500).length;
          while (seen().filter((o) => answered(o) && o.status >= 500).length < refusedBefore + 8) {
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          proxy.restore();
        });
        const statuses = outcomes.map(statusOf);
        // Only 200 (stored) and 500 (not stored: Meta redelivers), every webhook answered.
        expect(new Set(statuses)).toEqual(new Set([200, 500]));
        expect(await scanCount(gateway, id)).toBe(120);
      } finally {
        await proxy.close();
        await database.dispose();
      }
    });

    it('answers 500 within DATABASE_QUERY_TIMEOUT_MS while PostgreSQL stops answering, and stores again once it answers', async () => {
      const { proxy, database, proxiedUrl } = await behindProxy();
      try {
        const gateway = await startTestGateway(
          { ...database, url: proxiedUrl },
          { LOG_LEVEL: 'silent', DATABASE_QUERY_TIMEOUT_MS: '300', DATABASE_CONNECT_TIMEOUT_MS: '300' },
        );
        const id = await generate(gateway, 'partition');
        const scans = Array.from({ length: 240 }, () => scanOf(TEST_PAGE_ID, { ref: 'partition' }));
        let frozen = false;
        const outcomes = await streamThrough(gateway, webhooksOf(scans, 3), async (seen) => {
          // Nothing goes through, nothing is closed: without the timeouts every request would hang.
          proxy.freeze();
          frozen = true;
          const refusedBefore = seen().filter((o) => answered(o) && o.status >= 500).length;
          while (seen().filter((o) => answered(o) && o.status >= 500).length < refusedBefore + 8) {
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          proxy.thaw();
        });
        expect(frozen).toBe(true);
        expect(new Set(outcomes.map(statusOf))).toEqual(new Set([200, 500]));
        expect(await scanCount(gateway, id)).toBe(240);
      } finally {
        await proxy.close();
        await database.dispose();
      }
    });

    it('loses nothing when its backends are terminated (pg_terminate_backend) mid-stream', async () => {
      const database = await createTestDatabase('postgres');
      const applicationName = `faults-${randomBytes(4).toString('hex')}`;
      const named = new URL(database.url);
      named.searchParams.set('application_name', applicationName);
      const admin = new Client({ connectionString: postgresUrl });
      await admin.connect();
      try {
        const gateway = await startTestGateway({ ...database, url: named.toString() }, { LOG_LEVEL: 'silent' });
        const id = await generate(gateway, 'terminated');
        const scans = Array.from({ length: 240 }, () => scanOf(TEST_PAGE_ID, { ref: 'terminated' }));
        let terminated = 0;
        const outcomes = await streamThrough(gateway, webhooksOf(scans, 3), async () => {
          // Three times, a little apart: each takes every connection of the gateway's pool.
          for (let round = 0; round < 3; round++) {
            const { rowCount } = await admin.query(
              'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
              [applicationName],
            );
            terminated += rowCount ?? 0;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        });
        expect(terminated).toBeGreaterThan(0);
        // A webhook whose transaction lost its connection is answered 500; the pool reconnects for the next.
        expect(outcomes.every((outcome) => [200, 500].includes(statusOf(outcome) as number))).toBe(true);
        expect(await scanCount(gateway, id)).toBe(240);
      } finally {
        await admin.end();
        await database.dispose();
      }
    });
  });
}

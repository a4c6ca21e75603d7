/**
 * Issue 13, faults: `kill -9` of the gateway in the middle of a stream of webhooks. The
 * gateway is a real process (src/main.ts); webhooks come from concurrent senders, as Meta's
 * do; the process is killed with requests in flight and restarted on the same database.
 * A bot sits behind the relay (RELAY_URL): what its outbox held at the kill still reaches it.
 */
import { CodeDocument, GenerateCodeDocument } from '../generated/graphql';
import { createTestDatabase, DATABASE_KINDS, reportSkippedDatabases, type DatabaseKind, type TestDatabase } from '../support/databases';
import { TEST_PAGE_ID } from '../support/gateway';
import { eventually } from '../support/subscriptions';
import { FakeBot } from '../support/fake-bot';
import { GatewayProcess } from '../support/gateway-process';
import { executeOk } from '../support/graphql-client';
import { countMismatches, openDatabase, scansPerRef } from '../support/scan-ledger';
import { scanOf } from '../support/webhook';
import { answered, stream, webhooksOf, type WebhookOutcome } from '../support/webhook-stream';

reportSkippedDatabases();

/** Refs with a code, one without (an orphan), and the page's static code (null). */
const REFS = ['poster-a', 'poster-b', 'flyer', 'orphan', null] as const;
const SCANS = 360;
const SENDERS = 8;
/** The kill comes once this many webhooks were answered 200: well inside the stream. */
const KILL_AFTER = 50;
/**
 * The bot refuses the first deliveries once; their retry comes later than the kill, so the
 * outbox still holds them when the process dies. A delivery cut mid-attempt by the kill is
 * sent again by the restarted process once its lease is over: 2 s here (50 s by default).
 */
const REFUSED_FIRST = 8;
const RELAY = {
  RELAY_TIMEOUT_MS: '1000',
  RELAY_LEASE_MS: '2000',
  RELAY_RETRY_BASE_MS: '2000',
  RELAY_RETRY_MAX_MS: '2000',
  RELAY_POLL_MS: '50',
};

// Two starts of src/main.ts compiled on the fly: about 10 s each on a busy 2-core machine.
jest.setTimeout(180_000);

describe.each(DATABASE_KINDS)('kill -9 mid-stream on %s', (kind: DatabaseKind) => {
  let database: TestDatabase;
  let bot: FakeBot;
  beforeAll(async () => {
    database = await createTestDatabase(kind);
    bot = await FakeBot.start();
  });
  afterAll(async () => {
    await bot?.close();
    await database?.dispose();
  });

  it('stores and counts every scan answered 200 exactly once after the restart, dedupes every redelivery, and relays what it held', async () => {
    const gatewayEnv = { RELAY_URL: bot.url, ...RELAY };
    for (let delivery = 0; delivery < REFUSED_FIRST; delivery += 1) bot.planNextDelivery(['error500']);
    const first = await GatewayProcess.start(database.url, gatewayEnv);
    const codes = new Map<string, string>();
    for (const ref of ['poster-a', 'poster-b', 'flyer', null]) {
      const input = ref === null ? { imageSize: 100 } : { data: { ref }, imageSize: 100 };
      codes.set(ref ?? '', (await executeOk(first.url, GenerateCodeDocument, { input })).generateCode.id);
    }
    const scans = Array.from({ length: SCANS }, (_, index) => scanOf(TEST_PAGE_ID, { ref: REFS[index % REFS.length] }));
    const webhooks = webhooksOf(scans, 3);
    const refOf = new Map(scans.map((scan) => [scan.timestamp, scan.ref ?? '']));

    let ok = 0;
    let killed: Promise<void> | undefined;
    const outcomes = await stream(first.url, webhooks, SENDERS, (outcome) => {
      if (answered(outcome) && outcome.status === 200) ok += 1;
      if (ok >= KILL_AFTER && !killed) killed = first.kill();
      // The senders go on until the dead gateway refuses one: those in flight at the kill, and
      // any sent meanwhile, get no answer (or a 200 that was already on its way).
      return 'error' in outcome;
    });
    // Nothing failed before the kill: the stream stopped because the gateway was gone.
    expect(killed).toBeDefined();
    await killed;
    const acceptedBeforeRestart = new Set(bot.accepted.map((request) => request.deliveryId));

    const answered200 = outcomes.flatMap((outcome, index) => (answered(outcome) && outcome.status === 200 ? [index] : []));
    const unanswered = outcomes.filter((outcome): outcome is { error: string } => outcome !== undefined && 'error' in outcome);
    // The stream was cut; nothing but 200 was ever answered.
    expect(unanswered.length).toBeGreaterThan(0);
    expect(outcomes.filter((outcome) => answered(outcome) && outcome.status !== 200)).toEqual([]);
    // Each 200 accounted for every scan of its webhook.
    for (const index of answered200) {
      const { receipt } = outcomes[index] as Extract<WebhookOutcome, { status: number }>;
      expect(receipt).toMatchObject({ stored: webhooks[index].scans.length, duplicates: 0, ignored: 0, malformed: 0 });
    }

    // Read straight from the database, the gateway dead: what a 200 promised is there, once.
    const reader = await openDatabase(database.url);
    let outbox: { id: string; body: string }[];
    try {
      // Each webhook answered 200 has its relay delivery in the outbox (delivered or not yet).
      outbox = (await reader.query<{ id: string; body: Buffer | Uint8Array }>('SELECT id, body FROM relay_delivery')).map((row) => ({
        id: row.id,
        body: Buffer.from(row.body).toString('utf8'),
      }));
      const outboxBodies = new Set(outbox.map((row) => row.body));
      expect(answered200.filter((index) => !outboxBodies.has(webhooks[index].body))).toEqual([]);
      const stored = await reader.query<{ occurred_at: number | string }>('SELECT occurred_at FROM scan');
      const times = stored.map((row) => Number(row.occurred_at));
      expect(new Set(times).size).toBe(times.length);
      const storedTimes = new Set(times);
      const promised = answered200.flatMap((index) => webhooks[index].scans.map((scan) => scan.timestamp));
      expect(promised.filter((time) => !storedTimes.has(time))).toEqual([]);
      // Beyond the 200s, only scans of webhooks that were in flight (committed, answer lost).
      const inFlight = new Set(outcomes.flatMap((outcome, index) => (outcome && 'error' in outcome ? webhooks[index].scans : [])));
      const extra = [...storedTimes].filter((time) => !promised.includes(time));
      expect(extra.every((time) => [...inFlight].some((scan) => scan.timestamp === time))).toBe(true);
      // A webhook in flight is committed whole or not at all.
      for (const [index, outcome] of outcomes.entries()) {
        if (!outcome || !('error' in outcome)) continue;
        const stored = webhooks[index].scans.filter((scan) => storedTimes.has(scan.timestamp)).length;
        expect([0, webhooks[index].scans.length]).toContain(stored);
      }
      expect(await countMismatches(reader)).toEqual([]);
    } finally {
      await reader.close();
    }

    // Restarted on the same database, Meta redelivers everything not acknowledged, and
    // (being at-least-once) some of what was: here, everything.
    const second = await GatewayProcess.start(database.url, gatewayEnv);
    const redelivered = await stream(second.url, webhooks, SENDERS);
    expect(redelivered.filter((outcome) => !answered(outcome) || outcome.status !== 200)).toEqual([]);
    for (const index of answered200) {
      const { receipt } = redelivered[index] as Extract<WebhookOutcome, { status: number }>;
      expect(receipt).toMatchObject({ stored: 0, duplicates: webhooks[index].scans.length });
    }

    const expected = new Map<string, number>();
    for (const ref of refOf.values()) expected.set(ref, (expected.get(ref) ?? 0) + 1);
    const after = await openDatabase(database.url);
    try {
      expect(Object.fromEntries(await scansPerRef(after))).toEqual(Object.fromEntries(expected));
      const times = (await after.query<{ occurred_at: number | string }>('SELECT occurred_at FROM scan')).map((row) =>
        Number(row.occurred_at),
      );
      expect(times.sort()).toEqual([...refOf.keys()].sort());
      expect(await countMismatches(after)).toEqual([]);
    } finally {
      await after.close();
    }
    // And through the API: each code's count is the number of its scans.
    for (const [ref, id] of codes) {
      expect((await executeOk(second.url, CodeDocument, { id })).code?.scanCount).toBe(expected.get(ref));
    }

    // Every delivery the outbox held at the kill reaches the bot: before it, or from the restarted
    // process. The redeliveries are relayed too, under delivery ids of their own.
    const pendingAtKill = outbox.map((row) => row.id);
    expect(pendingAtKill.filter((id) => !acceptedBeforeRestart.has(id)).length).toBeGreaterThan(0);
    await eventually(
      () => {
        const accepted = new Set(bot.accepted.map((request) => request.deliveryId));
        return pendingAtKill.every((id) => accepted.has(id));
      },
      60_000,
      'every delivery held at the kill to reach the bot',
    );
    const acceptedBodies = new Map(bot.accepted.map((request) => [request.deliveryId, request.body.toString('utf8')]));
    for (const row of outbox) expect(acceptedBodies.get(row.id)).toBe(row.body);
    await eventually(
      () => new Set(bot.accepted.map((request) => request.body.toString('utf8'))).size === webhooks.length,
      60_000,
      'the redeliveries to be relayed',
    );
    await second.kill();
  });
});

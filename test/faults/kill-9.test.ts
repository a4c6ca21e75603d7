/**
 * Issue 13, faults: `kill -9` of the gateway in the middle of a stream of webhooks. The
 * gateway is a real process (src/main.ts); webhooks come from concurrent senders, as Meta's
 * do; the process is killed with requests in flight and restarted on the same database.
 */
import { CodeDocument, GenerateCodeDocument } from '../generated/graphql';
import { createTestDatabase, DATABASE_KINDS, reportSkippedDatabases, type DatabaseKind, type TestDatabase } from '../support/databases';
import { TEST_PAGE_ID } from '../support/gateway';
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

// Two starts of src/main.ts compiled on the fly: about 10 s each on a busy 2-core machine.
jest.setTimeout(180_000);

describe.each(DATABASE_KINDS)('kill -9 mid-stream on %s', (kind: DatabaseKind) => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase(kind);
  });
  afterAll(() => database?.dispose());

  it('stores and counts every scan answered 200 exactly once after the restart, and dedupes every redelivery', async () => {
    const first = await GatewayProcess.start(database.url);
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
    try {
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
    const second = await GatewayProcess.start(database.url);
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
    await second.kill();
  });
});

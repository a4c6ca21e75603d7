/**
 * Issue 13, faults: malformed webhooks generated from a corpus of real Messenger payload
 * shapes (test/support/messenger-corpus.ts), mutated by a seeded generator, signed and
 * posted. Never a 5xx; every item of a page webhook is stored, a duplicate, ignored or
 * malformed in the JSON receipt; what the receipts say was stored is what the database holds.
 */
import { CodeDocument, GenerateCodeDocument } from '../generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases } from '../support/databases';
import { startTestGateway, TEST_PAGE_ID } from '../support/gateway';
import { executeOk } from '../support/graphql-client';
import { generateWebhook, itemsOf, type GeneratedWebhook } from '../support/messenger-corpus';
import { countMismatches, openDatabase, storedScanIds } from '../support/scan-ledger';
import { postRawWebhookForReceipt } from '../support/webhook-stream';

reportSkippedDatabases();

/** Fixed: a failure names the seed and the body, and replays the same way. */
const SEED = Number(process.env.FAULTS_SEED ?? 13);
const BODIES = 250;
const SENDERS = 4;
/** Every this-many-th body is delivered twice, as Meta redelivers. */
const REDELIVER_EVERY = 5;

jest.setTimeout(60_000);

describe.each(DATABASE_KINDS)('malformed webhooks on %s', (kind) => {
  it(`answers ${BODIES} generated bodies without a 5xx and accounts for every item`, async () => {
    const gateway = await startTestGateway(kind, { LOG_LEVEL: 'error' });
    const codes = new Map<string, string>();
    for (const ref of ['poster-a', 'flyer']) {
      codes.set(ref, (await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref }, imageSize: 100 } })).generateCode.id);
    }
    let psid = 0;
    let time = 1_764_500_000_000;
    // Half the senders' ids beyond 2^53: written as JSON numbers, they must keep every digit.
    const identity = {
      pageId: TEST_PAGE_ID,
      psid: () => (++psid % 2 === 0 ? `${7_000_000_000_000_000 + psid}` : `9${String(psid).padStart(18, '0')}`),
      time: () => (time += 1_000),
    };
    // Generated up front, in order, so the run is the same whatever the senders' timing.
    const webhooks: GeneratedWebhook[] = Array.from({ length: BODIES }, (_, index) => generateWebhook(SEED, index, identity));

    const failures: string[] = [];
    const storedIds = new Set<string>();
    let storedTotal = 0;
    let next = 0;
    const check = async (index: number) => {
      const webhook = webhooks[index];
      const expectedItems = itemsOf(webhook.bytes);
      const deliveries = index % REDELIVER_EVERY === 0 ? 2 : 1;
      let first: { stored: number; duplicates: number; ignored: number; malformed: number } | undefined;
      for (let delivery = 0; delivery < deliveries; delivery++) {
        const outcome = await postRawWebhookForReceipt(gateway.url, webhook.bytes);
        const fail = (what: string) =>
          failures.push(`${webhook.recipe} (delivery ${delivery + 1}): ${what}; answered ${outcome.status} ${outcome.text.slice(0, 300)}`);
        if (expectedItems === undefined) {
          // Not JSON, or not a page webhook: refused whole, with a 400, never a 5xx.
          if (outcome.status !== 400) fail('expected 400 for a body that is not a page webhook');
          continue;
        }
        const receipt = outcome.receipt;
        if (outcome.status !== 200 || !receipt) {
          fail(`expected 200 with a receipt for a page webhook of ${expectedItems} items`);
          continue;
        }
        const accounted = receipt.stored + receipt.duplicates + receipt.ignored + receipt.malformed;
        if (accounted !== expectedItems) fail(`${expectedItems} items, ${accounted} accounted for`);
        if (receipt.scans.length !== receipt.stored + receipt.duplicates) fail('scans listed ≠ stored + duplicates');
        // A body left valid: each of its scans is new and stored, the rest ignored.
        if (webhook.scans !== undefined && delivery === 0) {
          const expected = { stored: webhook.scans, duplicates: 0, ignored: expectedItems - webhook.scans, malformed: 0 };
          const got = { stored: receipt.stored, duplicates: receipt.duplicates, ignored: receipt.ignored, malformed: receipt.malformed };
          if (JSON.stringify(got) !== JSON.stringify(expected)) fail(`a valid body: expected ${JSON.stringify(expected)}`);
        }
        if (receipt.scans.filter((scan) => scan.stored).length !== receipt.stored) fail('scans marked stored ≠ stored');
        for (const scan of receipt.scans) {
          if (!scan.stored) continue;
          if (storedIds.has(scan.id)) fail(`scan ${scan.id} stored twice`);
          storedIds.add(scan.id);
        }
        storedTotal += receipt.stored;
        if (delivery === 0) first = receipt;
        // A redelivery stores nothing: what the first stored are now duplicates.
        else if (
          first &&
          (receipt.stored !== 0 || receipt.duplicates !== first.stored + first.duplicates || receipt.malformed !== first.malformed)
        ) {
          fail(`redelivery: ${JSON.stringify(receipt)} after ${JSON.stringify(first)}`);
        }
      }
    };
    await Promise.all(
      Array.from({ length: SENDERS }, async () => {
        while (next < webhooks.length) await check(next++);
      }),
    );
    expect(failures).toEqual([]);

    // The database holds exactly what the receipts said was stored, each counted once.
    const reader = await openDatabase(gateway.database.url);
    try {
      const inDatabase = await storedScanIds(reader);
      expect(inDatabase.size).toBe(storedTotal);
      expect([...storedIds].filter((id) => !inDatabase.has(id))).toEqual([]);
      expect(await countMismatches(reader)).toEqual([]);
      const perRef = await reader.query<{ ref: string; n: number | string }>(
        `SELECT ref, COUNT(*) AS n FROM scan WHERE page_id = '${TEST_PAGE_ID}' GROUP BY ref`,
      );
      for (const [ref, id] of codes) {
        const stored = Number(perRef.find((row) => row.ref === ref)?.n ?? 0);
        expect((await executeOk(gateway.url, CodeDocument, { id })).code?.scanCount).toBe(stored);
      }
    } finally {
      await reader.close();
    }
    // Real scans got through the mutations: the corpus is not all garbage.
    expect(storedTotal).toBeGreaterThan(BODIES / 2);
  });
});

/**
 * What Messenger can send is stored, and what cannot be stored is reported: the
 * ingest findings of the hardening issue, on SQLite and PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { ScansDocument, type ScanFieldsFragment } from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { sample, scrape } from './support/metrics';
import { startTestGateway, type TestGateway } from './support/gateway';
import { executeOk } from './support/graphql-client';
import { postRawWebhook } from './support/webhook';

reportSkippedDatabases();

const newPageId = (): string => `8${randomBytes(6).readUIntBE(0, 6).toString().padStart(15, '0')}`;
const newPsid = (): string => `${Date.now()}${randomBytes(3).readUIntBE(0, 3)}`;

/** A messaging item as Meta writes it, ids as JSON strings. */
const item = (pageId: string, psid: string, timestamp: number, event: Record<string, unknown>) => ({
  sender: { id: psid },
  recipient: { id: pageId },
  timestamp,
  ...event,
});
const page = (pageId: string, entry: Record<string, unknown>) =>
  JSON.stringify({ object: 'page', entry: [{ id: pageId, time: 1, ...entry }] });

describe.each(DATABASE_KINDS)('webhook ingest on %s', (kind) => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startTestGateway(kind, { LOG_LEVEL: 'warn' });
  });

  async function scansOfPage(pageId: string): Promise<ScanFieldsFragment[]> {
    const { scans } = await executeOk(gateway.url, ScansDocument, { pageId, first: 100 });
    return scans.edges.map((edge) => edge.node);
  }

  async function rejected(reason: string): Promise<number> {
    const { text } = await scrape(gateway.url);
    return sample(text, `gateway_webhook_items_rejected_total{reason="${reason}"}`) ?? 0;
  }

  it('stores a ref of 2,083 characters (what m.me links carry) and counts it', async () => {
    const pageId = newPageId();
    const ref = `r${'e'.repeat(2081)}f`;
    expect(ref).toHaveLength(2083);
    const answer = await postRawWebhook(
      gateway.url,
      page(pageId, { messaging: [item(pageId, newPsid(), 1_764_400_000_000, { referral: { ref } })] }),
    );
    expect(answer.status).toBe(200);
    expect(await scansOfPage(pageId)).toMatchObject([{ ref, kind: 'REFERRAL', code: null }]);
  });

  it('reports a ref longer than 2,083 characters at warn and in /metrics, storing its neighbours', async () => {
    const pageId = newPageId();
    const before = await rejected('ref too long');
    const mark = gateway.logs.lines.length;
    const body = page(pageId, {
      messaging: [
        item(pageId, newPsid(), 1_764_400_000_001, { referral: { ref: 'x'.repeat(2084) } }),
        item(pageId, newPsid(), 1_764_400_000_002, { referral: { ref: 'neighbour' } }),
      ],
    });
    expect((await postRawWebhook(gateway.url, body)).status).toBe(200);
    expect((await scansOfPage(pageId)).map((scan) => scan.ref)).toEqual(['neighbour']);
    expect(await rejected('ref too long')).toBe(before + 1);
    const warned = gateway.logs.entries().slice(mark);
    expect(warned).toEqual([
      expect.objectContaining({ level: 'warn', message: 'webhook scans not stored', malformed: 1, reasons: { 'ref too long': 1 } }),
    ]);
    expect(JSON.stringify(warned)).not.toContain('xxxxxxxx');
  });

  it('measures a ref with NUL after NUL becomes U+FFFD (3 bytes): one too long for an index entry fails no neighbour', async () => {
    const pageId = newPageId();
    const before = await rejected('ref too long');
    // 2,083 characters and 2,083 bytes as sent, 2,683 bytes once stored: past what (page_id, ref, id) may
    // take in one PostgreSQL index entry. Random letters between the NULs, so that nothing compresses it.
    const letters = randomBytes(1783)
      .toString('base64')
      .replace(/[^A-Za-z0-9]/g, 'q')
      .slice(0, 1783);
    const ref = [...letters].map((letter, index) => (index % 5 === 0 && index < 1500 ? `${letter}\u0000` : letter)).join('');
    expect([ref.length, Buffer.byteLength(ref)]).toEqual([2083, 2083]);
    const body = page(pageId, {
      messaging: [
        item(pageId, newPsid(), 1_764_400_000_011, { referral: { ref } }),
        item(pageId, newPsid(), 1_764_400_000_012, { referral: { ref: 'beside-the-nuls' } }),
      ],
    });
    expect((await postRawWebhook(gateway.url, body)).status).toBe(200);
    expect((await scansOfPage(pageId)).map((scan) => scan.ref)).toEqual(['beside-the-nuls']);
    expect(await rejected('ref too long')).toBe(before + 1);
  });

  it('keeps numeric ids digit for digit: two senders a double cannot tell apart are two scans', async () => {
    const pageId = newPageId();
    // Raw JSON with the ids as numbers, beyond 2^53.
    const body =
      `{"object":"page","entry":[{"id":${pageId},"time":1,"messaging":[` +
      `{"sender":{"id":1234567890123456789},"recipient":{"id":${pageId}},"timestamp":1764400000100,"referral":{"ref":"big-ids"}},` +
      `{"sender":{"id":1234567890123456788},"recipient":{"id":${pageId}},"timestamp":1764400000100,"referral":{"ref":"big-ids"}}]}]}`;
    expect((await postRawWebhook(gateway.url, body)).status).toBe(200);
    const scans = await scansOfPage(pageId);
    expect(scans).toHaveLength(2);
    expect(scans.every((scan) => scan.pageId === pageId)).toBe(true);
  });

  it('takes a big numeric page id as its exact digits', async () => {
    const pageId = '9007199254740993'; // 2^53 + 1: a double would read 9007199254740992
    const body = `{"object":"page","entry":[{"id":${pageId},"time":1,"messaging":[{"sender":{"id":"${newPsid()}"},"recipient":{"id":${pageId}},"timestamp":1764400000200,"referral":{"ref":"exact"}}]}]}`;
    expect((await postRawWebhook(gateway.url, body)).status).toBe(200);
    expect(await scansOfPage(pageId)).toMatchObject([{ pageId, ref: 'exact' }]);
    expect(await scansOfPage('9007199254740992')).toEqual([]);
  });

  it('reads a timestamp in seconds as seconds, not as January 1970', async () => {
    const pageId = newPageId();
    const body = page(pageId, { messaging: [item(pageId, newPsid(), 1_764_400_300, { referral: { ref: 'seconds' } })] });
    expect((await postRawWebhook(gateway.url, body)).status).toBe(200);
    expect(await scansOfPage(pageId)).toMatchObject([{ occurredAt: new Date(1_764_400_300_000).toISOString() }]);
  });

  it('never lets one item fail its neighbours: NUL in a page id, a timestamp no scan id can hold', async () => {
    const pageId = newPageId();
    const before = [await rejected('invalid page id'), await rejected('timestamp out of range')];
    const body = page(pageId, {
      messaging: [
        item(pageId, newPsid(), 1_764_400_000_300, { referral: { ref: 'before' } }),
        item(`${pageId}\u0000`, newPsid(), 1_764_400_000_301, { referral: { ref: 'nul-page' } }),
        item(pageId, newPsid(), 3e14, { referral: { ref: 'far-future' } }),
        item(pageId, newPsid(), 1_764_400_000_302, { referral: { ref: 'after' } }),
      ],
    });
    const answer = await postRawWebhook(gateway.url, body);
    expect(answer.status).toBe(200);
    expect((await scansOfPage(pageId)).map((scan) => scan.ref)).toEqual(['after', 'before']);
    expect([await rejected('invalid page id'), await rejected('timestamp out of range')]).toEqual([before[0] + 1, before[1] + 1]);
    // Redelivered (as Meta does): still 200, nothing counted twice.
    expect((await postRawWebhook(gateway.url, body)).status).toBe(200);
    expect(await scansOfPage(pageId)).toHaveLength(2);
  });

  it('counts referrals under standby (the app does not own the thread) and on a message', async () => {
    const pageId = newPageId();
    const body = page(pageId, {
      standby: [
        item(pageId, newPsid(), 1_764_400_000_400, { referral: { ref: 'from-standby', source: 'SHORTLINK', type: 'OPEN_THREAD' } }),
      ],
      messaging: [
        item(pageId, newPsid(), 1_764_400_000_401, {
          message: { mid: 'm_1', text: 'Hi', referral: { ref: 'on-a-message', source: 'ADS', type: 'OPEN_THREAD' } },
        }),
      ],
    });
    expect((await postRawWebhook(gateway.url, body)).status).toBe(200);
    expect(await scansOfPage(pageId)).toMatchObject([
      { ref: 'on-a-message', kind: 'REFERRAL', source: 'ADS' },
      { ref: 'from-standby', kind: 'REFERRAL', source: 'SHORTLINK' },
    ]);
  });
});

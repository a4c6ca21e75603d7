/**
 * Two gateway instances writing scans into one database at once (what a multi-instance
 * deployment on PostgreSQL does; on SQLite, two connections to one file): every scan is
 * stored and counted once, however the instances interleave, and each event's running
 * totals agree with the storage order. On PostgreSQL this is the ingest transaction's end
 * (scan_ingest) taking the counters and the stream's row under contention.
 */
import { randomUUID } from 'node:crypto';
import { Access } from '../src/access';
import type { ScanEvent } from '../src/scans/scan-feed';
import { Scan, ScanKind } from '../src/scans/scan.entity';
import { ScanWriter } from '../src/scans/scan.store';
import { ScanRollups } from '../src/stats/scan-rollups';
import { createTestDatabase, DATABASE_KINDS, reportSkippedDatabases, type TestDatabase } from './support/databases';
import { startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';

reportSkippedDatabases();

const REFS = ['two-0', 'two-1', 'two-2'];
const ORPHAN_REF = 'two-orphan';

describe.each(DATABASE_KINDS)('two instances storing scans at once on %s', (kind) => {
  let a: TestGateway;
  let b: TestGateway;
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    a = await startTestGateway(database);
    b = await startTestGateway(database);
    await a.services.codes.generateMany({ requestId: 'two-writers', access: Access.internal() }, { refs: REFS, imageSize: 100 });
  });
  afterAll(async () => {
    await database.dispose();
  });

  it('count every scan once, with running totals in storage order, redeliveries across instances included', async () => {
    let time = Date.UTC(2026, 10, 2);
    const scanOf = (ref: string | null): Scan =>
      Object.assign(new Scan(), {
        id: randomUUID(),
        pageId: TEST_PAGE_ID,
        ref,
        kind: ScanKind.REFERRAL,
        source: 'MESSENGER_CODE',
        senderHash: randomUUID().replace(/-/g, ''),
        occurredAt: new Date((time += 1000)),
        receivedAt: new Date(time),
      });
    const writers = [new ScanWriter(a.db, [new ScanRollups(a.db)]), new ScanWriter(b.db, [new ScanRollups(b.db)])];
    const sent = new Map<string, Scan>();
    const writes: Promise<ScanEvent[]>[] = [];
    for (let round = 0; round < 20; round++) {
      for (let request = 0; request < 8; request++) {
        const scans = [scanOf(REFS[(round + request) % REFS.length]), scanOf(request % 4 === 0 ? ORPHAN_REF : REFS[request % REFS.length])];
        for (const scan of scans) sent.set(scan.id, scan);
        // Every fourth request is also delivered to the other instance (Meta retries anywhere).
        writes.push(writers[request % 2].write(scans));
        if (request % 4 === 1) writes.push(writers[(request + 1) % 2].write(scans.map((scan) => Object.assign(new Scan(), scan))));
      }
      await Promise.all(writes.slice(-10));
    }
    const events = (await Promise.all(writes)).flat();

    // Stored once each: one event per scan sent, whichever instance stored it.
    expect(events.map((event) => event.scan.id).sort()).toEqual([...sent.keys()].sort());
    // The stream: positions 1..n, each once, and the stream's row at n.
    const total = sent.size;
    expect(events.map((event) => event.scan.streamSeq).sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const [stream]: { position: number | string }[] = await a.db.dataSource.query('SELECT position FROM scan_stream WHERE id = 1');
    expect(Number(stream.position)).toBe(total);

    for (const ref of [...REFS, ORPHAN_REF]) {
      const ofRef = events.filter((event) => event.scan.ref === ref).sort((x, y) => x.scan.streamSeq - y.scan.streamSeq);
      const scans = [...sent.values()].filter((scan) => scan.ref === ref).length;
      expect(ofRef).toHaveLength(scans);
      const p = (n: number) => a.db.param(n);
      const [counter]: { scan_count: number | string }[] = await a.db.dataSource.query(
        `SELECT scan_count FROM ref_counter WHERE page_id = ${p(1)} AND ref = ${p(2)}`,
        [TEST_PAGE_ID, ref],
      );
      expect(Number(counter.scan_count)).toBe(scans);
      if (ref === ORPHAN_REF) {
        expect(ofRef.every((event) => event.code === null)).toBe(true);
        continue;
      }
      // In storage order, the code's count after each scan is 1, 2, ... n: no total taken twice or skipped.
      expect(ofRef.map((event) => event.code?.scanCount)).toEqual(Array.from({ length: scans }, (_, i) => i + 1));
      expect(ofRef.map((event) => event.code?.lastScannedAt)).toEqual(
        ofRef.map((_, i) => Math.max(...ofRef.slice(0, i + 1).map((event) => event.scan.occurredAt))),
      );
      const [code]: { scan_count: number | string }[] = await a.db.dataSource.query(
        `SELECT scan_count FROM code WHERE page_id = ${p(1)} AND ref = ${p(2)}`,
        [TEST_PAGE_ID, ref],
      );
      expect(Number(code.scan_count)).toBe(scans);
    }
  });
});

/**
 * The ingest transaction as other capabilities use it (ScanService.ingest's `alongside`,
 * the relay's outbox): rows written alongside commit with the scans or not at all, and
 * requests that shared a group commit are isolated from each other's failure.
 */
import { Access } from '../src/access';
import type { TransactionSql } from '../src/scans/scan.store';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { incomingScan } from './support/incoming-scan';
import { startTestGateway, type TestGateway } from './support/gateway';

reportSkippedDatabases();

const context = () => ({ requestId: 'scan-writer-test', access: Access.internal() });

describe.each(DATABASE_KINDS)('the ingest transaction on %s', (kind) => {
  let gateway: TestGateway;
  const p = (n: number) => gateway.db.param(n);

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
    await gateway.db.dataSource.query('CREATE TABLE alongside_probe (label varchar(64) NOT NULL)');
  });

  const probe = (label: string) => async (sql: TransactionSql) => {
    await sql.query(`INSERT INTO alongside_probe (label) VALUES (${sql.param(1)})`, [label]);
  };
  async function probes(label: string): Promise<number> {
    const rows: { n: string | number }[] = await gateway.db.dataSource.query(
      `SELECT COUNT(*) AS n FROM alongside_probe WHERE label = ${p(1)}`,
      [label],
    );
    return Number(rows[0].n);
  }
  async function scansOf(ref: string): Promise<number> {
    const rows: { n: string | number }[] = await gateway.db.dataSource.query(`SELECT COUNT(*) AS n FROM scan WHERE ref = ${p(1)}`, [ref]);
    return Number(rows[0].n);
  }
  async function streamIsContiguous(): Promise<boolean> {
    const [row]: { n: string | number; top: string | number | null; position: string | number }[] = await gateway.db.dataSource.query(
      'SELECT COUNT(*) AS n, MAX(stream_seq) AS top, (SELECT position FROM scan_stream WHERE id = 1) AS position FROM scan',
    );
    return Number(row.n) === Number(row.top ?? 0) && Number(row.position) === Number(row.n);
  }

  it('rows written alongside commit with the scans, and also when the request has no scan', async () => {
    const result = await gateway.services.scans.ingest(context(), [incomingScan('along-1'), incomingScan('along-1')], probe('with-scans'));
    expect(result.stored).toBe(2);
    expect(await probes('with-scans')).toBe(1);
    await gateway.services.scans.ingest(context(), [], probe('without-scans'));
    expect(await probes('without-scans')).toBe(1);
  });

  it('a request that fails in a shared group commit fails alone: the others are stored, it leaves nothing', async () => {
    const failing = async (sql: TransactionSql) => {
      await probe('half-written')(sql);
      throw new Error('the outbox refused');
    };
    // Started in the same tick: they share one transaction, which the failure rolls back.
    const outcomes = await Promise.allSettled([
      gateway.services.scans.ingest(context(), [incomingScan('group-ok-1')], probe('group-ok-1')),
      gateway.services.scans.ingest(context(), [incomingScan('group-bad'), incomingScan('group-bad')], failing),
      gateway.services.scans.ingest(context(), [incomingScan('group-ok-2')]),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toEqual(new Error('the outbox refused'));
    expect(await scansOf('group-ok-1')).toBe(1);
    expect(await scansOf('group-ok-2')).toBe(1);
    expect(await probes('group-ok-1')).toBe(1);
    expect(await scansOf('group-bad')).toBe(0);
    expect(await probes('half-written')).toBe(0);
    // The positions the rolled-back group had taken were given again: no hole.
    expect(await streamIsContiguous()).toBe(true);
  });

  it('a ref with a lone surrogate (JSON can carry one) is stored and counted', async () => {
    const result = await gateway.services.scans.ingest(context(), [incomingScan('lone-\ud800-ref'), incomingScan('lone-\ud800-ref')]);
    expect(result.stored).toBe(2);
  });

  it('redeliveries among new scans of a group: the new ones numbered contiguously, in arrival order', async () => {
    const scans = Array.from({ length: 6 }, (_, index) => incomingScan(`mixed-${index}`));
    await gateway.services.scans.ingest(context(), [scans[1], scans[3]]);
    // One group: the stored scans sit between new ones, in both requests.
    const [first, second] = await Promise.all([
      gateway.services.scans.ingest(context(), [scans[0], scans[1], scans[2], scans[3], scans[4]]),
      gateway.services.scans.ingest(context(), [scans[1], scans[5]]),
    ]);
    expect([first.stored, first.duplicates, second.stored, second.duplicates]).toEqual([3, 2, 1, 1]);
    const rows: { ref: string; stream_seq: string | number }[] = await gateway.db.dataSource.query(
      `SELECT ref, stream_seq FROM scan WHERE ref LIKE 'mixed-%' ORDER BY stream_seq`,
    );
    expect(rows.map((row) => row.ref)).toEqual(['mixed-1', 'mixed-3', 'mixed-0', 'mixed-2', 'mixed-4', 'mixed-5']);
    const positions = rows.map((row) => Number(row.stream_seq));
    expect(positions.slice(2)).toEqual([0, 1, 2, 3].map((offset) => positions[2] + offset));
    expect(await streamIsContiguous()).toBe(true);
  });

  it('many requests at once are stored once each, with contiguous positions', async () => {
    const refs = Array.from({ length: 40 }, (_, index) => `burst-${index % 5}`);
    const scans = refs.map(incomingScan);
    const results = await Promise.all(scans.map((scan) => gateway.services.scans.ingest(context(), [scan, scan])));
    expect(results.map((result) => [result.stored, result.duplicates])).toEqual(refs.map(() => [1, 1]));
    for (let index = 0; index < 5; index++) expect(await scansOf(`burst-${index}`)).toBe(8);
    expect(await streamIsContiguous()).toBe(true);
  });
});

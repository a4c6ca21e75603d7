/**
 * The database's scans in storage order, as the live feed and `scanned(after:)` read them:
 * each scan with the code of its (page, ref) as it is now, looked up together.
 */
import { Access } from '../src/access';
import { ScanStreamStore } from '../src/scans/scan-stream.store';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { incomingScan } from './support/incoming-scan';
import { startTestGateway, type TestGateway } from './support/gateway';

reportSkippedDatabases();

const context = () => ({ requestId: 'scan-stream-test', access: Access.internal() });

describe.each(DATABASE_KINDS)('the stored scan stream on %s', (kind) => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
  });

  it('reads scans over more codes than one lookup takes, each with its own code, orphans with none', async () => {
    // 120 codes: more than the 100 pairs one query looks up.
    const refs = Array.from({ length: 120 }, (_, index) => `stream-${index}`);
    const codes = await gateway.services.codes.generateMany(context(), { refs, imageSize: 100 });
    const codeOf = new Map(codes.map((code) => [code.ref, code.id]));
    const stream = new ScanStreamStore(gateway.db);
    const before = await stream.position();
    const sent = [...refs, 'stream-orphan', ...refs.slice(0, 3)].map(incomingScan);
    for (let start = 0; start < sent.length; start += 25) await gateway.services.scans.ingest(context(), sent.slice(start, start + 25));

    const read = await stream.readAfter(before, await stream.position(), { scope: Access.internal().scope }, 500);
    expect(read.map((event) => event.scan.ref)).toEqual(sent.map((scan) => scan.ref));
    for (const event of read) expect(event.code?.id ?? null).toBe(codeOf.get(event.scan.ref as string) ?? null);
    // As they are now: the first three were scanned twice.
    expect(read.find((event) => event.scan.ref === 'stream-0')?.code?.scanCount).toBe(2);
    expect(read.find((event) => event.scan.ref === 'stream-119')?.code?.scanCount).toBe(1);
  });
});

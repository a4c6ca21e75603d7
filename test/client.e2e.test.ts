import { print } from 'graphql';
import {
  CodesByScansDocument,
  LiveScansDocument,
  TodayDocument,
  WhoAmIDocument,
  type LiveScansSubscription,
} from '../client/generated/graphql';
import { GenerateCodeDocument } from './generated/graphql';
import { startTestGateway, TEST_PAGE_ID } from './support/gateway';
import { executeOk } from './support/graphql-client';
import { TestSubscriber, waitForSubscribers } from './support/subscriptions';
import { postScans, scanOf } from './support/webhook';

/** The typed client frontends generate (client/generated, the client preset), against a real gateway. */
describe('the typed client of client/generated', () => {
  it('runs its queries and its subscription with the types it declares', async () => {
    const gateway = await startTestGateway('sqlite');
    await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'table-1' }, label: 'Table 1', imageSize: 100 } });

    const { viewer } = await executeOk(gateway.url, WhoAmIDocument, {});
    expect(viewer.role).toBe('ADMIN');

    const subscriber = TestSubscriber.open<LiveScansSubscription>(gateway.url, print(LiveScansDocument), { pageId: TEST_PAGE_ID });
    await waitForSubscribers(gateway, 1);
    const now = Date.now();
    expect((await postScans(gateway.url, [scanOf(TEST_PAGE_ID, { ref: 'table-1', timestamp: now })])).status).toBe(200);
    await subscriber.waitForEvents(1);
    const scanned: LiveScansSubscription['scanned'] = subscriber.events[0].scanned;
    expect(scanned).toMatchObject({ ref: 'table-1', kind: 'REFERRAL', code: { scanCount: 1 } });
    await subscriber.close();

    const { codes } = await executeOk(gateway.url, CodesByScansDocument, { first: 10 });
    expect(codes.edges.map(({ node }) => [node.label, node.scanCount, node.tracking])).toEqual([['Table 1', 1, 'DIRECT']]);

    const { scanStats } = await executeOk(gateway.url, TodayDocument, {
      from: new Date(now - 3_600_000).toISOString(),
      to: new Date(now + 3_600_000).toISOString(),
      timeZone: 'Europe/Berlin',
    });
    expect(scanStats.total).toBe(1);
    expect(scanStats.topCodes.map(({ code, count }) => [code.label, count])).toEqual([['Table 1', 1]]);
  });
});

import { CodeDocument, CreateApiKeyDocument, GenerateCodeDocument, OrphanRefsDocument, RegisterPageDocument } from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { execute, executeOk } from './support/graphql-client';
import { postScans, scanOf } from './support/webhook';

reportSkippedDatabases();

const OTHER_PAGE = '3000000000001';
const T0 = Date.parse('2026-11-02T10:00:00.000Z');

describe.each(DATABASE_KINDS)('orphanRefs on %s', (kind) => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: OTHER_PAGE } });
    await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'has-code' }, imageSize: 100 } });
    const scans = [
      scanOf(TEST_PAGE_ID, { ref: 'has-code', timestamp: T0 }),
      ...[1, 2, 3].map((n) => scanOf(TEST_PAGE_ID, { ref: 'menu-flyer', timestamp: T0 + n })),
      ...[1, 2].map((n) => scanOf(TEST_PAGE_ID, { ref: 'old-poster', timestamp: T0 + 10 + n })),
      // The page's static code has no code here either, but it is no ref: never listed.
      scanOf(TEST_PAGE_ID, { ref: null, timestamp: T0 + 20 }),
      ...[1, 2].map((n) => scanOf(OTHER_PAGE, { ref: 'other-flyer', timestamp: T0 + 30 + n })),
    ];
    expect((await postScans(gateway.url, scans)).status).toBe(200);
  });

  it('lists the refs scanned that no code has, most scanned first, with when they were last scanned', async () => {
    const { orphanRefs } = await executeOk(gateway.url, OrphanRefsDocument, {});
    expect(orphanRefs.totalCount).toBe(3);
    expect(orphanRefs.edges.map(({ node }) => node)).toEqual([
      { pageId: TEST_PAGE_ID, ref: 'menu-flyer', scanCount: 3, lastScannedAt: new Date(T0 + 3).toISOString() },
      // A tie on count: by page, then ref.
      { pageId: TEST_PAGE_ID, ref: 'old-poster', scanCount: 2, lastScannedAt: new Date(T0 + 12).toISOString() },
      { pageId: OTHER_PAGE, ref: 'other-flyer', scanCount: 2, lastScannedAt: new Date(T0 + 32).toISOString() },
    ]);
    const { orphanRefs: ofOtherPage } = await executeOk(gateway.url, OrphanRefsDocument, { pageId: OTHER_PAGE });
    expect(ofOtherPage.edges.map(({ node }) => node.ref)).toEqual(['other-flyer']);
    expect(ofOtherPage.totalCount).toBe(1);
  });

  it('pages through ties, each orphan exactly once', async () => {
    const scans = Array.from({ length: 7 }, (_, n) => scanOf(OTHER_PAGE, { ref: `tie-${n}`, timestamp: T0 + 100 + n }));
    await postScans(gateway.url, scans);
    const seen: string[] = [];
    let after: string | null | undefined;
    do {
      const {
        orphanRefs,
      }: { orphanRefs: { edges: { node: { ref: string } }[]; pageInfo: { hasNextPage: boolean; endCursor?: string | null } } } =
        await executeOk(gateway.url, OrphanRefsDocument, { pageId: OTHER_PAGE, first: 3, after });
      seen.push(...orphanRefs.edges.map(({ node }) => node.ref));
      after = orphanRefs.pageInfo.hasNextPage ? orphanRefs.pageInfo.endCursor : null;
    } while (after);
    expect(seen).toEqual(['other-flyer', ...Array.from({ length: 7 }, (_, n) => `tie-${n}`)]);
  });

  it('drops a ref once a code is generated for it, and the code counts its scans', async () => {
    const { generateCode } = await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'old-poster' }, imageSize: 100 } });
    expect(generateCode.scanCount).toBe(2);
    const { orphanRefs } = await executeOk(gateway.url, OrphanRefsDocument, { pageId: TEST_PAGE_ID });
    expect(orphanRefs.edges.map(({ node }) => node.ref)).toEqual(['menu-flyer']);
    expect(orphanRefs.totalCount).toBe(1);
    // A later scan of it counts on the code, not as an orphan.
    await postScans(gateway.url, [scanOf(TEST_PAGE_ID, { ref: 'old-poster', timestamp: T0 + 500 })]);
    expect((await executeOk(gateway.url, CodeDocument, { id: generateCode.id })).code?.scanCount).toBe(3);
    expect((await executeOk(gateway.url, OrphanRefsDocument, { pageId: TEST_PAGE_ID })).orphanRefs.totalCount).toBe(1);
  });

  it.each([
    [{ first: 0 }, 'first'],
    [{ first: 101 }, 'first'],
    [{ after: 'not-a-cursor' }, 'after'],
  ])('refuses %j with BAD_USER_INPUT on %s', async (variables, field) => {
    const result = await execute(gateway.url, OrphanRefsDocument, variables);
    expect(result.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });

  it('gives a scoped key the orphans of its pages only', async () => {
    const admin = await executeOk(gateway.url, CreateApiKeyDocument, { input: { name: 'admin', role: 'ADMIN' } });
    const viewer = await executeOk(
      gateway.url,
      CreateApiKeyDocument,
      { input: { name: 'viewer', role: 'VIEWER', pageIds: [TEST_PAGE_ID] } },
      { authorization: `Bearer ${admin.createApiKey.key}` },
    );
    const headers = { authorization: `Bearer ${viewer.createApiKey.key}` };
    const { orphanRefs } = await executeOk(gateway.url, OrphanRefsDocument, {}, headers);
    expect(orphanRefs.edges.map(({ node }) => node.pageId)).toEqual([TEST_PAGE_ID]);
    expect(orphanRefs.totalCount).toBe(1);
    const refused = await execute(gateway.url, OrphanRefsDocument, { pageId: OTHER_PAGE }, headers);
    expect(refused.errors?.[0].extensions).toMatchObject({ code: 'FORBIDDEN', field: 'pageId' });
    expect(JSON.stringify(refused)).not.toContain('other-flyer');
  });
});

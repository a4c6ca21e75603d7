import { randomBytes, randomUUID } from 'node:crypto';
import { ScanKind } from '../src/scans/scan.entity';
import type { SimulatedScan } from '../src/webhook/simulated-webhook';
import { CodeScansDocument, CodesDocument, GenerateCodeDocument, ScansDocument, type ScanFieldsFragment } from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { countRows, startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { execute } from './support/graphql-client';
import { PrivacyWitness } from './support/privacy-witness';

reportSkippedDatabases();

/** A fresh page id per test keeps each test's scans apart from the others'. */
const newPageId = (): string => `8${randomBytes(6).readUIntBE(0, 6).toString().padStart(15, '0')}`;
/** A fresh ref per test, within the characters a code's ref allows. */
const newRef = (name: string): string => `${name}-${randomBytes(4).toString('hex')}`;
const iso = (timestamp: number): string => new Date(timestamp).toISOString();

type ScanPage = {
  edges: { cursor?: string; node: ScanFieldsFragment }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  totalCount: number;
};

describe.each(DATABASE_KINDS)('scans on %s', (kind) => {
  let gateway: TestGateway;
  const witness = new PrivacyWitness(() => gateway);
  const { scan, query, post } = witness;
  const postOk = async (scans: SimulatedScan[]) => expect((await post(scans)).status).toBe(200);

  const generate = async (ref: string | null) =>
    (await query(GenerateCodeDocument, { input: ref === null ? { imageSize: 100 } : { data: { ref }, imageSize: 100 } })).generateCode;

  /** Walks a list to its end with `first`, checking each page's totalCount and cursor chain. */
  async function walk(
    fetchPage: (after: string | null) => Promise<ScanPage>,
    first: number,
  ): Promise<{ nodes: ScanFieldsFragment[]; totals: number[]; pages: number }> {
    const nodes: ScanFieldsFragment[] = [];
    const totals: number[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const page: ScanPage = await fetchPage(after);
      pages += 1;
      totals.push(page.totalCount);
      expect(page.edges.length).toBeLessThanOrEqual(first);
      nodes.push(...page.edges.map((edge) => edge.node));
      if (!page.pageInfo.hasNextPage) {
        if (page.edges.length > 0) expect(page.pageInfo.endCursor).not.toBeNull();
        return { nodes, totals, pages };
      }
      expect(page.edges).toHaveLength(first);
      if (page.edges[0].cursor !== undefined) expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor);
      after = page.pageInfo.endCursor;
      expect(pages).toBeLessThan(1000);
    }
  }
  const walkScans = (variables: { pageId?: string; codeId?: string }, first: number) =>
    walk(async (after) => (await query(ScansDocument, { ...variables, first, after })).scans, first);
  const walkCodeScans = (id: string, first: number) =>
    walk(async (after) => {
      const { code } = await query(CodeScansDocument, { id, first, after });
      if (!code) throw new Error(`code ${id} not found`);
      return code.scans;
    }, first);
  const codeCounts = async (id: string) => {
    const { code } = await query(CodeScansDocument, { id, first: 1 });
    return { scanCount: code?.scanCount, lastScannedAt: code?.lastScannedAt, codeScansTotal: code?.scans.totalCount };
  };

  /** Newest first by occurredAt, ties in any order, each scan once. */
  function expectNewestFirstOnce(nodes: ScanFieldsFragment[]): void {
    expect(new Set(nodes.map((node) => node.id)).size).toBe(nodes.length);
    const times = nodes.map((node) => node.occurredAt);
    expect(times).toEqual([...times].sort().reverse());
  }

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
  });

  describe('orphan scans and codes generated later', () => {
    it('keeps scans of a ref without a code as orphans, then counts them on the code generated for that ref', async () => {
      const ref = newRef('late');
      const t = 1_765_000_000_000;
      const events = [
        scan(TEST_PAGE_ID, { ref, timestamp: t + 300, kind: ScanKind.REFERRAL, source: 'SHORTLINK' }),
        scan(TEST_PAGE_ID, { ref, timestamp: t + 100, kind: ScanKind.POSTBACK, source: null }),
        scan(TEST_PAGE_ID, { ref, timestamp: t + 200, kind: ScanKind.REFERRAL, source: 'MESSENGER_CODE' }),
      ];
      const codesBefore = await countRows(gateway, 'code');
      await postOk(events.slice(0, 2));
      await postOk(events.slice(2));
      expect(await countRows(gateway, 'code')).toBe(codesBefore);

      const orphans = (await walkScans({ pageId: TEST_PAGE_ID }, 100)).nodes.filter((node) => node.ref === ref);
      expect(orphans.map(({ kind: k, source, occurredAt, code, pageId }) => ({ kind: k, source, occurredAt, code, pageId }))).toEqual([
        { kind: 'REFERRAL', source: 'SHORTLINK', occurredAt: iso(t + 300), code: null, pageId: TEST_PAGE_ID },
        { kind: 'REFERRAL', source: 'MESSENGER_CODE', occurredAt: iso(t + 200), code: null, pageId: TEST_PAGE_ID },
        { kind: 'POSTBACK', source: null, occurredAt: iso(t + 100), code: null, pageId: TEST_PAGE_ID },
      ]);

      const code = await generate(ref);
      expect(code).toMatchObject({ ref, scanCount: 3, lastScannedAt: iso(t + 300) });
      const { nodes, totals } = await walkCodeScans(code.id, 2);
      expect(nodes.map((node) => node.id)).toEqual(orphans.map((orphan) => orphan.id));
      expect(totals).toEqual([3, 3]);
      for (const node of nodes) expect(node.code).toEqual({ id: code.id, ref, scanCount: 3, lastScannedAt: iso(t + 300) });
      const byCodeId = await walkScans({ codeId: code.id }, 100);
      expect(byCodeId.nodes.map((node) => node.id)).toEqual(orphans.map((orphan) => orphan.id));
      expect(byCodeId.totals).toEqual([3]);
      const listedNow = (await walkScans({ pageId: TEST_PAGE_ID }, 100)).nodes.filter((node) => node.ref === ref);
      expect(listedNow.map((node) => node.code?.id)).toEqual([code.id, code.id, code.id]);

      // An older scan arriving late counts, without moving lastScannedAt back.
      await postOk([scan(TEST_PAGE_ID, { ref, timestamp: t + 50 })]);
      expect(await codeCounts(code.id)).toEqual({ scanCount: 4, lastScannedAt: iso(t + 300), codeScansTotal: 4 });
      const again = await generate(ref);
      expect(again).toMatchObject({ id: code.id, scanCount: 4, lastScannedAt: iso(t + 300) });
    });

    it('keeps scans without a ref as orphans of the page, then counts them on the static code generated later', async () => {
      const t = 1_765_100_000_000;
      const events = [
        scan(TEST_PAGE_ID, { ref: null, timestamp: t + 2 }),
        scan(TEST_PAGE_ID, { ref: null, timestamp: t + 1, kind: ScanKind.POSTBACK }),
      ];
      await postOk(events);
      const statics = (await walkScans({ pageId: TEST_PAGE_ID }, 100)).nodes.filter((node) => node.ref === null);
      expect(statics).toMatchObject([
        { occurredAt: iso(t + 2), code: null, kind: 'REFERRAL' },
        { occurredAt: iso(t + 1), code: null, kind: 'POSTBACK' },
      ]);
      const code = await generate(null);
      expect(code).toMatchObject({ ref: null, scanCount: 2, lastScannedAt: iso(t + 2) });
      const { nodes } = await walkCodeScans(code.id, 20);
      expect(nodes.map((node) => node.id)).toEqual(statics.map((node) => node.id));
      // A parametric code's scans are not the static code's, nor the other way round.
      expect(nodes.every((node) => node.ref === null)).toBe(true);
    });

    it('does not attribute a ref to a code of another page', async () => {
      const ref = newRef('elsewhere');
      const otherPage = newPageId();
      const code = await generate(ref);
      await postOk([scan(otherPage, { ref }), scan(otherPage, { ref, kind: ScanKind.POSTBACK })]);
      expect(await codeCounts(code.id)).toEqual({ scanCount: 0, lastScannedAt: null, codeScansTotal: 0 });
      const { nodes } = await walkScans({ pageId: otherPage }, 100);
      expect(nodes).toHaveLength(2);
      expect(nodes.map((node) => node.code)).toEqual([null, null]);
    });
  });

  describe('counts under concurrency', () => {
    it('keeps exact totals per code when many signed posts arrive at once, some repeating events', async () => {
      const refs = [newRef('busy-a'), newRef('busy-b'), newRef('busy-c'), newRef('busy-orphan')];
      const codes = await Promise.all(refs.slice(0, 3).map((ref) => generate(ref)));
      const base = 1_765_200_000_000;
      // A fixed shuffle of timestamps, so the newest scan is not the last one posted.
      const spread = (n: number) => base + ((n * 7919) % 1000) * 1000;
      const posts: SimulatedScan[][] = [];
      let n = 0;
      for (let p = 0; p < 40; p++) {
        const own = Array.from({ length: 3 + (p % 4) }, (_unused, i) => {
          n += 1;
          return scan(TEST_PAGE_ID, {
            ref: refs[(p + i) % refs.length],
            timestamp: spread(n),
            kind: n % 5 === 0 ? ScanKind.POSTBACK : ScanKind.REFERRAL,
          });
        });
        // Every third post repeats two events of the post before it (a redelivery racing the original).
        const repeated = p % 3 === 2 ? posts[p - 1].slice(0, 2) : [];
        posts.push([...own, ...repeated]);
      }
      // And a few posts are sent twice at the same moment.
      const sent = [...posts, posts[5], posts[17], posts[33]];
      const distinct = new Map<string, SimulatedScan>();
      for (const event of posts.flat()) distinct.set(`${event.senderPsid}|${event.timestamp}|${event.kind}|${event.ref}`, event);
      const expected = refs.map((ref) => {
        const mine = [...distinct.values()].filter((event) => event.ref === ref);
        return { count: mine.length, last: iso(Math.max(...mine.map((event) => event.timestamp))) };
      });
      expect(expected.every((entry) => entry.count > 10)).toBe(true);

      const before = await countRows(gateway, 'scan');
      const statuses = (await Promise.all(sent.map((events) => post(events)))).map((answer) => answer.status);
      expect(statuses).toEqual(sent.map(() => 200));
      expect(await countRows(gateway, 'scan')).toBe(before + distinct.size);

      for (const [index, code] of codes.entries()) {
        expect(await codeCounts(code.id)).toEqual({
          scanCount: expected[index].count,
          lastScannedAt: expected[index].last,
          codeScansTotal: expected[index].count,
        });
        const byCodeId = await query(ScansDocument, { codeId: code.id, first: 1 });
        expect(byCodeId.scans.totalCount).toBe(expected[index].count);
        expect(byCodeId.scans.edges[0].node.occurredAt).toBe(expected[index].last);
      }
      // The orphan ref was counted too: its code, generated now, starts with them.
      expect(await generate(refs[3])).toMatchObject({ scanCount: expected[3].count, lastScannedAt: expected[3].last });
    });

    it('counts every scan of a ref whose code is generated while its scans are arriving', async () => {
      const ref = newRef('racing-code');
      const events = Array.from({ length: 30 }, (_unused, i) => scan(TEST_PAGE_ID, { ref, timestamp: 1_765_300_000_000 + i }));
      const [generated] = await Promise.all([
        generate(ref),
        ...Array.from({ length: 10 }, (_unused, i) => postOk(events.slice(i * 3, i * 3 + 3))),
        generate(ref),
      ]);
      expect(await codeCounts(generated.id)).toEqual({ scanCount: 30, lastScannedAt: iso(1_765_300_000_029), codeScansTotal: 30 });
      expect((await query(ScansDocument, { codeId: generated.id, first: 1 })).scans.totalCount).toBe(30);
      expect((await query(CodesDocument, { ref })).codes.totalCount).toBe(1);
    });
  });

  describe('the scans query', () => {
    it('pages through every scan of a page, newest first, each once, ties on occurredAt included', async () => {
      const pageId = newPageId();
      const t = 1_765_400_000_000;
      // 45 scans over 15 distinct instants: three people scanning at the same millisecond.
      const events = Array.from({ length: 45 }, (_unused, i) => scan(pageId, { ref: `tie-${i % 4}`, timestamp: t + (i % 15) * 10 }));
      await postOk(events.slice(0, 20));
      await postOk(events.slice(20));
      for (const first of [1, 7, 15, 44, 45, 100]) {
        const { nodes, totals, pages } = await walkScans({ pageId }, first);
        expect(nodes).toHaveLength(45);
        expectNewestFirstOnce(nodes);
        expect(totals.every((total) => total === 45)).toBe(true);
        expect(pages).toBe(Math.max(1, Math.ceil(45 / first)));
        expect(nodes.map((node) => node.occurredAt).sort()).toEqual(events.map((event) => iso(event.timestamp)).sort());
        expect(nodes.every((node) => node.pageId === pageId && node.code === null)).toBe(true);
      }
      // The default page size is 20.
      const { scans } = await query(ScansDocument, { pageId });
      expect(scans.edges).toHaveLength(20);
      expect(scans.pageInfo.hasNextPage).toBe(true);
    });

    it('keeps a cursor valid while newer scans arrive: the next page continues where the last one ended', async () => {
      const pageId = newPageId();
      const t = 1_765_450_000_000;
      await postOk(Array.from({ length: 10 }, (_unused, i) => scan(pageId, { timestamp: t + i })));
      const first = (await query(ScansDocument, { pageId, first: 4 })).scans;
      await postOk([scan(pageId, { timestamp: t + 1000 }), scan(pageId, { timestamp: t - 1000 })]);
      const rest = await walk(
        async (after) => (await query(ScansDocument, { pageId, first: 4, after: after ?? first.pageInfo.endCursor })).scans,
        4,
      );
      expect([...first.edges.map((edge) => edge.node), ...rest.nodes].map((node) => node.occurredAt)).toEqual([
        ...Array.from({ length: 10 }, (_unused, i) => iso(t + 9 - i)),
        iso(t - 1000),
      ]);
    });

    it('filters by codeId and by pageId, alone and together', async () => {
      const ref = newRef('filter');
      const otherRef = newRef('filter-other');
      const otherPage = newPageId();
      const code = await generate(ref);
      const other = await generate(otherRef);
      await postOk([
        ...Array.from({ length: 5 }, () => scan(TEST_PAGE_ID, { ref })),
        ...Array.from({ length: 3 }, () => scan(otherPage, { ref })),
        ...Array.from({ length: 4 }, () => scan(TEST_PAGE_ID, { ref: otherRef })),
      ]);
      const mine = await walkScans({ codeId: code.id }, 2);
      expect(mine.nodes).toHaveLength(5);
      expect(mine.totals).toEqual([5, 5, 5]);
      expectNewestFirstOnce(mine.nodes);
      expect(mine.nodes.every((node) => node.ref === ref && node.pageId === TEST_PAGE_ID && node.code?.id === code.id)).toBe(true);

      const both = await query(ScansDocument, { codeId: code.id, pageId: TEST_PAGE_ID, first: 100 });
      expect(both.scans.edges.map((edge) => edge.node.id)).toEqual(mine.nodes.map((node) => node.id));
      const mismatch = await query(ScansDocument, { codeId: code.id, pageId: otherPage });
      expect(mismatch.scans).toEqual({ totalCount: 0, pageInfo: { hasNextPage: false, endCursor: null }, edges: [] });

      const theirs = await walkScans({ codeId: other.id }, 100);
      expect(theirs.nodes.map((node) => node.ref)).toEqual([otherRef, otherRef, otherRef, otherRef]);
      const onOtherPage = await walkScans({ pageId: otherPage }, 100);
      expect(onOtherPage.nodes.map((node) => [node.ref, node.code])).toEqual([
        [ref, null],
        [ref, null],
        [ref, null],
      ]);
    });

    it('lists everything without filters, and nothing for a page without scans', async () => {
      const total = await countRows(gateway, 'scan');
      const all = await query(ScansDocument, { first: 100 });
      expect(all.scans.totalCount).toBe(total);
      const times = all.scans.edges.map((edge) => edge.node.occurredAt);
      expect(times).toEqual([...times].sort().reverse());
      const empty = await query(ScansDocument, { pageId: newPageId() });
      expect(empty.scans).toEqual({ totalCount: 0, pageInfo: { hasNextPage: false, endCursor: null }, edges: [] });
    });

    it('pages through Code.scans', async () => {
      const ref = newRef('code-scans');
      const code = await generate(ref);
      const t = 1_765_500_000_000;
      const events = Array.from({ length: 25 }, (_unused, i) => scan(TEST_PAGE_ID, { ref, timestamp: t + (i % 9) }));
      await postOk(events);
      for (const first of [1, 6, 25]) {
        const { nodes, totals } = await walkCodeScans(code.id, first);
        expect(nodes).toHaveLength(25);
        expectNewestFirstOnce(nodes);
        expect(totals.every((total) => total === 25)).toBe(true);
      }
      // The default page size is 20.
      const { code: page } = await query(CodeScansDocument, { id: code.id });
      expect(page?.scans.edges).toHaveLength(20);
      expect(page?.scans.pageInfo.hasNextPage).toBe(true);
      const empty = await generate(newRef('never-scanned'));
      const { code: none } = await query(CodeScansDocument, { id: empty.id });
      expect(none?.scans).toEqual({ totalCount: 0, pageInfo: { hasNextPage: false, endCursor: null }, edges: [] });
    });

    describe('bad arguments', () => {
      let codeId: string;
      let codesCursor: string;
      beforeAll(async () => {
        codeId = (await generate(newRef('bad-args'))).id;
        codesCursor = (await query(CodesDocument, { first: 1 })).codes.pageInfo.endCursor as string;
        expect(codesCursor).toEqual(expect.any(String));
      });
      const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const cases: { name: string; list: 'scans' | 'Code.scans'; variables: () => Record<string, unknown>; code: string; field: string }[] =
        [
          ...(['scans', 'Code.scans'] as const).flatMap((list) => [
            { name: 'first 0', list, variables: () => ({ first: 0 }), code: 'BAD_USER_INPUT', field: 'first' },
            { name: 'first 101', list, variables: () => ({ first: 101 }), code: 'BAD_USER_INPUT', field: 'first' },
            { name: 'first -1', list, variables: () => ({ first: -1 }), code: 'BAD_USER_INPUT', field: 'first' },
            { name: 'after not a cursor', list, variables: () => ({ after: 'nope' }), code: 'BAD_USER_INPUT', field: 'after' },
            { name: 'after empty', list, variables: () => ({ after: '' }), code: 'BAD_USER_INPUT', field: 'after' },
            {
              name: 'after a cursor of the codes list',
              list,
              variables: () => ({ after: codesCursor }),
              code: 'BAD_USER_INPUT',
              field: 'after',
            },
            {
              name: 'after a forged cursor of the right ordering with a key of the wrong type',
              list,
              variables: () => ({ after: forged(['ID_DESC', 1]) }),
              code: 'BAD_USER_INPUT',
              field: 'after',
            },
            {
              name: 'after a forged cursor of the right ordering with too many keys',
              list,
              variables: () => ({ after: forged(['ID_DESC', 'x', 1]) }),
              code: 'BAD_USER_INPUT',
              field: 'after',
            },
            {
              name: 'after a forged cursor with null',
              list,
              variables: () => ({ after: forged(['ID_DESC', null]) }),
              code: 'BAD_USER_INPUT',
              field: 'after',
            },
          ]),
          { name: 'an unknown codeId', list: 'scans', variables: () => ({ codeId: randomUUID() }), code: 'NOT_FOUND', field: 'codeId' },
          {
            name: 'a codeId that is no id at all',
            list: 'scans',
            variables: () => ({ codeId: 'not-an-id' }),
            code: 'NOT_FOUND',
            field: 'codeId',
          },
        ];
      it.each(cases)('$list with $name → $code on $field', async ({ list, variables, code, field }) => {
        const result =
          list === 'scans'
            ? await execute(gateway.url, ScansDocument, variables())
            : await execute(gateway.url, CodeScansDocument, { id: codeId, ...variables() });
        witness.remember(JSON.stringify(result));
        expect(result.errors).toHaveLength(1);
        expect(result.errors?.[0].extensions).toMatchObject({ code, field });
        expect(result.errors?.[0].message.length).toBeGreaterThan(10);
      });
    });
  });

  describe('privacy', () => {
    it('never returns a PSID through the API nor stores one in any table', async () => {
      expect(witness.psids.size).toBeGreaterThan(200);
      expect(await witness.leakedPsids()).toEqual([]);
    });
  });
});

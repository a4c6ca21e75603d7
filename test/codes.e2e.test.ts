import { CodeDocument, CodesDocument, GenerateCodeDocument, type CodeOrderBy } from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { countRows, startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { execute, executeOk } from './support/graphql-client';

reportSkippedDatabases();

describe.each(DATABASE_KINDS)('codes on %s', (kind) => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
  });

  describe('generateCode', () => {
    it('creates the static code of the default page, with scan counts at zero', async () => {
      const { generateCode: code } = await executeOk(gateway.url, GenerateCodeDocument, { input: {} });
      expect(code).toMatchObject({
        pageId: TEST_PAGE_ID,
        type: 'STANDARD',
        ref: null,
        label: null,
        provider: 'LOCAL',
        imageSize: 1000,
        scanCount: 0,
        lastScannedAt: null,
      });
      expect(code.imageUrl).toMatch(new RegExp(`^${gateway.publicUrl}/images/[0-9a-f-]{36}$`));
      expect(new Date(code.createdAt).toISOString()).toBe(code.createdAt);
    });

    it('creates a parametric code and returns the same code for the same (page, ref)', async () => {
      const first = await executeOk(gateway.url, GenerateCodeDocument, {
        input: { data: { ref: 'table-12' }, label: 'Table 12', imageSize: 400 },
      });
      const again = await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'table-12' }, imageSize: 400 } });
      expect(again.generateCode).toEqual(first.generateCode);
      expect(first.generateCode).toMatchObject({ ref: 'table-12', label: 'Table 12', imageSize: 400 });
    });

    it('stores an image of a new size as the current one and keeps serving earlier URLs', async () => {
      const small = (await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'resize-me' }, imageSize: 200 } }))
        .generateCode;
      const large = (await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'resize-me' }, imageSize: 600 } }))
        .generateCode;
      expect(large.id).toBe(small.id);
      expect(large.imageSize).toBe(600);
      expect(large.imageUrl).not.toBe(small.imageUrl);
      const images = await countRows(gateway, 'code_image');
      // Back to the first size: the stored image is reused, not rendered again.
      const back = (await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'resize-me' }, imageSize: 200 } }))
        .generateCode;
      expect(back.imageUrl).toBe(small.imageUrl);
      expect(await countRows(gateway, 'code_image')).toBe(images);
      for (const [url, size] of [
        [small.imageUrl, 200],
        [large.imageUrl, 600],
      ] as const) {
        const response = await fetch(url);
        expect(response.status).toBe(200);
        const bytes = Buffer.from(await response.arrayBuffer());
        expect(bytes.readUInt32BE(16)).toBe(size); // PNG IHDR width
        expect(bytes.readUInt32BE(20)).toBe(size); // PNG IHDR height
      }
    });

    it('updates the label when one is given and keeps it when omitted', async () => {
      await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'labelled' }, label: 'Before', imageSize: 150 } });
      const renamed = await executeOk(gateway.url, GenerateCodeDocument, {
        input: { data: { ref: 'labelled' }, label: '  After  ', imageSize: 150 },
      });
      expect(renamed.generateCode.label).toBe('After');
      const kept = await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'labelled' }, imageSize: 150 } });
      expect(kept.generateCode.label).toBe('After');
    });

    it('accepts every allowed ref character and a ref of exactly 250', async () => {
      const allowed = 'aZ09+/=-.:_';
      const result = await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: allowed }, imageSize: 300 } });
      expect(result.generateCode.ref).toBe(allowed);
      const longest = 'r'.repeat(250);
      const long = await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: longest }, imageSize: 500 } });
      expect(long.generateCode.ref).toBe(longest);
    });

    it('gives concurrent requests for one new (page, ref) one code', async () => {
      const results = await Promise.all(
        Array.from({ length: 6 }, () => executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'race' }, imageSize: 120 } })),
      );
      expect(new Set(results.map((result) => result.generateCode.id)).size).toBe(1);
      const listed = await executeOk(gateway.url, CodesDocument, { ref: 'race' });
      expect(listed.codes.totalCount).toBe(1);
    });
  });

  describe('bad input', () => {
    const cases: { name: string; query: string; variables?: Record<string, unknown>; code: string; field: string }[] = [
      {
        name: 'imageSize below 100',
        query: 'mutation { generateCode(input: { imageSize: 99 }) { id } }',
        code: 'BAD_USER_INPUT',
        field: 'imageSize',
      },
      {
        name: 'imageSize above 2000',
        query: 'mutation { generateCode(input: { imageSize: 2001 }) { id } }',
        code: 'BAD_USER_INPUT',
        field: 'imageSize',
      },
      {
        name: 'imageSize negative',
        query: 'mutation { generateCode(input: { imageSize: -5 }) { id } }',
        code: 'BAD_USER_INPUT',
        field: 'imageSize',
      },
      {
        name: 'imageSize not an integer (literal)',
        query: 'mutation { generateCode(input: { imageSize: 100.5 }) { id } }',
        code: 'BAD_USER_INPUT',
        field: 'imageSize',
      },
      {
        name: 'imageSize not an integer (variable)',
        query: 'mutation ($input: GenerateCodeInput!) { generateCode(input: $input) { id } }',
        variables: { input: { imageSize: 512.25 } },
        code: 'BAD_USER_INPUT',
        field: 'imageSize',
      },
      {
        name: 'imageSize a string (variable)',
        query: 'mutation ($input: GenerateCodeInput!) { generateCode(input: $input) { id } }',
        variables: { input: { imageSize: '500' } },
        code: 'BAD_USER_INPUT',
        field: 'imageSize',
      },
      {
        name: 'empty ref',
        query: 'mutation { generateCode(input: { data: { ref: "" } }) { id } }',
        code: 'BAD_USER_INPUT',
        field: 'data.ref',
      },
      {
        name: 'ref of 251 characters',
        query: `mutation { generateCode(input: { data: { ref: "${'a'.repeat(251)}" } }) { id } }`,
        code: 'BAD_USER_INPUT',
        field: 'data.ref',
      },
      ...[' ', '?', '&', '#', '%', 'é', '\\u0000', '*', ',', '!'].map((character) => ({
        name: `ref with ${JSON.stringify(character)}`,
        query: `mutation { generateCode(input: { data: { ref: "table${character}12" } }) { id } }`,
        code: 'BAD_USER_INPUT',
        field: 'data.ref',
      })),
      {
        name: 'ref not a string (variable)',
        query: 'mutation ($input: GenerateCodeInput!) { generateCode(input: $input) { id } }',
        variables: { input: { data: { ref: 12 } } },
        code: 'BAD_USER_INPUT',
        field: 'data.ref',
      },
      { name: 'unknown type', query: 'mutation { generateCode(input: { type: FANCY }) { id } }', code: 'BAD_USER_INPUT', field: 'type' },
      {
        name: 'label over 200 characters',
        query: `mutation { generateCode(input: { label: "${'l'.repeat(201)}" }) { id } }`,
        code: 'BAD_USER_INPUT',
        field: 'label',
      },
      { name: 'unknown page', query: 'mutation { generateCode(input: { pageId: "999" }) { id } }', code: 'NOT_FOUND', field: 'pageId' },
      { name: 'first 0', query: '{ codes(first: 0) { totalCount } }', code: 'BAD_USER_INPUT', field: 'first' },
      { name: 'first 101', query: '{ codes(first: 101) { totalCount } }', code: 'BAD_USER_INPUT', field: 'first' },
      { name: 'after not a cursor', query: '{ codes(after: "nope") { totalCount } }', code: 'BAD_USER_INPUT', field: 'after' },
      { name: 'ref filter with a bad character', query: '{ codes(ref: "a b") { totalCount } }', code: 'BAD_USER_INPUT', field: 'ref' },
    ];

    it.each(cases)('$name → $code on $field, nothing stored', async ({ query, variables, code, field }) => {
      const before = [await countRows(gateway, 'code'), await countRows(gateway, 'code_image')];
      const response = await fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] };
      expect(body.errors).toHaveLength(1);
      expect(body.errors?.[0].extensions).toMatchObject({ code, field });
      expect(body.errors?.[0].message.length).toBeGreaterThan(10);
      expect([await countRows(gateway, 'code'), await countRows(gateway, 'code_image')]).toEqual(before);
    });

    it('refuses a cursor of another ordering', async () => {
      await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'cursor-a' }, imageSize: 100 } });
      await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'cursor-b' }, imageSize: 100 } });
      const page = await executeOk(gateway.url, CodesDocument, { first: 1, orderBy: 'CREATED_AT_DESC' });
      const result = await execute(gateway.url, CodesDocument, {
        first: 1,
        orderBy: 'SCAN_COUNT_DESC',
        after: page.codes.pageInfo.endCursor,
      });
      expect(result.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    });
  });

  describe('images', () => {
    it('serves the exact bytes with a strong ETag, immutable caching and 304 on If-None-Match', async () => {
      const { generateCode: code } = await executeOk(gateway.url, GenerateCodeDocument, {
        input: { data: { ref: 'etag' }, imageSize: 250 },
      });
      const first = await fetch(code.imageUrl);
      expect(first.status).toBe(200);
      expect(first.headers.get('content-type')).toBe('image/png');
      expect(first.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      const etag = first.headers.get('etag');
      expect(etag).toMatch(/^"[0-9a-f]{64}"$/);
      const bytes = Buffer.from(await first.arrayBuffer());
      const { createHash } = await import('node:crypto');
      expect(`"${createHash('sha256').update(bytes).digest('hex')}"`).toBe(etag);

      const again = await fetch(code.imageUrl, { headers: { 'If-None-Match': etag as string } });
      expect(again.status).toBe(304);
      expect((await again.arrayBuffer()).byteLength).toBe(0);
      const changed = await fetch(code.imageUrl, { headers: { 'If-None-Match': '"something-else"' } });
      expect(changed.status).toBe(200);
    });

    it('answers 404 for an unknown image', async () => {
      expect((await fetch(`${gateway.url}/images/00000000-0000-0000-0000-000000000000`)).status).toBe(404);
      expect((await fetch(`${gateway.url}/images/../../etc/passwd`)).status).toBe(404);
    });
  });

  describe('code(id)', () => {
    it('returns a code by id and null for an unknown id', async () => {
      const { generateCode: created } = await executeOk(gateway.url, GenerateCodeDocument, {
        input: { data: { ref: 'by-id' }, imageSize: 100 },
      });
      expect((await executeOk(gateway.url, CodeDocument, { id: created.id })).code).toEqual(created);
      expect((await executeOk(gateway.url, CodeDocument, { id: 'f0000000-0000-0000-0000-000000000000' })).code).toBeNull();
      expect((await executeOk(gateway.url, CodeDocument, { id: 'not-an-id' })).code).toBeNull();
    });
  });
});

describe.each(DATABASE_KINDS)('codes listing on %s', (kind) => {
  let gateway: TestGateway;
  const OTHER_PAGE = '5550001';
  const refs = Array.from({ length: 23 }, (_, index) => `item-${String(index).padStart(2, '0')}`);

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
    for (const ref of refs) {
      await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref }, imageSize: 100 } });
    }
    // Scans arrive through the webhook; until then, give the codes distinct counts and
    // ties directly, as the ingest path writes them.
    for (const [index, ref] of refs.entries()) {
      const count = index % 5;
      const last = count === 0 ? 0 : Date.UTC(2026, 0, 1) + index * 1000;
      await gateway.db.dataSource.query(`UPDATE code SET scan_count = ${count}, last_scanned_at = ${last} WHERE ref = '${ref}'`);
    }
    // A code of another page, only reachable through the seeding path: generateCode
    // refuses unknown pages.
    await gateway.db.dataSource.query(
      `INSERT INTO code (id, page_id, ref, type, provider, image_size, image_id, created_at)
       VALUES ('ffffffff-0000-0000-0000-000000000001', '${OTHER_PAGE}', 'item-00', 'STANDARD', 'LOCAL', 100, 'none', 1)`,
    );
  });

  async function listAll(orderBy: CodeOrderBy, pageSize: number, filters: { pageId?: string; ref?: string } = {}) {
    const seen: { id: string; ref: string | null; scanCount: number; lastScannedAt: string | null; createdAt: string }[] = [];
    let after: string | null | undefined;
    let totalCount = -1;
    for (;;) {
      const { codes } = await executeOk(gateway.url, CodesDocument, { ...filters, first: pageSize, after, orderBy });
      totalCount = codes.totalCount;
      seen.push(...codes.edges.map((edge) => edge.node));
      codes.edges.forEach((edge, index) => {
        if (index === codes.edges.length - 1) expect(edge.cursor).toBe(codes.pageInfo.endCursor);
      });
      if (!codes.pageInfo.hasNextPage) break;
      after = codes.pageInfo.endCursor;
    }
    return { seen, totalCount };
  }

  it.each(['CREATED_AT_DESC', 'CREATED_AT_ASC', 'SCAN_COUNT_DESC', 'LAST_SCANNED_AT_DESC'] as CodeOrderBy[])(
    'pages through every code exactly once, in %s order',
    async (orderBy) => {
      const { seen, totalCount } = await listAll(orderBy, 7, { pageId: TEST_PAGE_ID });
      expect(totalCount).toBe(refs.length);
      expect(seen.map((code) => code.ref).sort()).toEqual([...refs].sort());
      const key = (code: (typeof seen)[number]): number[] => {
        const created = Date.parse(code.createdAt);
        switch (orderBy) {
          case 'CREATED_AT_ASC':
            return [-created];
          case 'SCAN_COUNT_DESC':
            return [code.scanCount, created];
          case 'LAST_SCANNED_AT_DESC':
            return [code.lastScannedAt ? Date.parse(code.lastScannedAt) : 0, created];
          default:
            return [created];
        }
      };
      for (let index = 1; index < seen.length; index++) {
        const previous = key(seen[index - 1]);
        const current = key(seen[index]);
        const comparison = previous.findIndex((value, position) => value !== current[position]);
        if (comparison !== -1) expect(previous[comparison]).toBeGreaterThan(current[comparison]);
      }
    },
  );

  it('returns the same pages when asked again (stable cursors)', async () => {
    const once = await listAll('SCAN_COUNT_DESC', 4);
    const twice = await listAll('SCAN_COUNT_DESC', 4);
    expect(twice.seen.map((code) => code.id)).toEqual(once.seen.map((code) => code.id));
  });

  it('puts never-scanned codes last in LAST_SCANNED_AT_DESC', async () => {
    const { seen } = await listAll('LAST_SCANNED_AT_DESC', 100, { pageId: TEST_PAGE_ID });
    const firstNever = seen.findIndex((code) => code.lastScannedAt === null);
    expect(firstNever).toBeGreaterThan(0);
    expect(seen.slice(firstNever).every((code) => code.lastScannedAt === null)).toBe(true);
  });

  it('filters by page and by ref', async () => {
    const all = await executeOk(gateway.url, CodesDocument, { first: 100 });
    expect(all.codes.totalCount).toBe(refs.length + 1);
    const other = await executeOk(gateway.url, CodesDocument, { pageId: OTHER_PAGE });
    expect(other.codes.edges.map((edge) => edge.node.pageId)).toEqual([OTHER_PAGE]);
    const byRef = await executeOk(gateway.url, CodesDocument, { ref: 'item-00' });
    expect(byRef.codes.totalCount).toBe(2);
    const both = await executeOk(gateway.url, CodesDocument, { ref: 'item-00', pageId: TEST_PAGE_ID });
    expect(both.codes.edges.map((edge) => edge.node.ref)).toEqual(['item-00']);
    const nothing = await executeOk(gateway.url, CodesDocument, { pageId: '424242' });
    expect(nothing.codes).toEqual({ totalCount: 0, pageInfo: { hasNextPage: false, endCursor: null }, edges: [] });
  });

  it('defaults to 20 per page and caps at 100', async () => {
    const defaults = await executeOk(gateway.url, CodesDocument, {});
    expect(defaults.codes.edges).toHaveLength(20);
    expect(defaults.codes.pageInfo.hasNextPage).toBe(true);
    const max = await executeOk(gateway.url, CodesDocument, { first: 100 });
    expect(max.codes.edges).toHaveLength(refs.length + 1);
    expect(max.codes.pageInfo.hasNextPage).toBe(false);
  });
});

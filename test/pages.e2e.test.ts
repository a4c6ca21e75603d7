import { randomBytes } from 'node:crypto';
import {
  GenerateCodeDocument,
  PageDocument,
  PagesDocument,
  RegisterPageDocument,
  RemovePageDocument,
  UpdatePageDocument,
} from './generated/graphql';
import { appSecretProof } from '../src/codes/providers/facebook.provider';
import { keyIdOf } from '../src/pages/token-cipher';
import { DATABASE_KINDS, reportSkippedDatabases, type TestDatabase } from './support/databases';
import { databaseText } from './support/database-text';
import { FakeGraphApi } from './support/fake-graph-api';
import { countRows, startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { execute, executeOk } from './support/graphql-client';
import { postScans, scanOf, TEST_APP_SECRET } from './support/webhook';

reportSkippedDatabases();

const KEY = randomBytes(32);
const KEY_HEX = KEY.toString('hex');
const OLD_KEY_BASE64 = randomBytes(32).toString('base64');

async function pageRow(
  gateway: TestGateway,
  id: string,
): Promise<{ token_ciphertext: string | null; token_key_id: string | null } | undefined> {
  const placeholder = gateway.db.kind === 'postgres' ? '$1' : '?';
  const rows: { token_ciphertext: string | null; token_key_id: string | null }[] = await gateway.db.dataSource.query(
    `SELECT token_ciphertext, token_key_id FROM page WHERE id = ${placeholder}`,
    [id],
  );
  return rows[0];
}

async function countWhere(gateway: TestGateway, table: string, column: string, value: string): Promise<number> {
  const placeholder = gateway.db.kind === 'postgres' ? '$1' : '?';
  const rows: { n: number | string }[] = await gateway.db.dataSource.query(
    `SELECT COUNT(*) AS n FROM ${table} WHERE ${column} = ${placeholder}`,
    [value],
  );
  return Number(rows[0].n);
}

describe.each(DATABASE_KINDS)('pages registry on %s', (kind) => {
  let gateway: TestGateway;
  const TOKEN = `EAAG-page-token-${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    gateway = await startTestGateway(kind, { ENCRYPTION_KEY: KEY_HEX, LOG_LEVEL: 'debug' });
  });

  it('registers the default page at start', async () => {
    const { page } = await executeOk(gateway.url, PageDocument, { id: TEST_PAGE_ID });
    expect(page).toMatchObject({ id: TEST_PAGE_ID, name: null, hasAccessToken: false, relayUrl: null });
  });

  it('registers, lists, reads, updates (left out keeps, null clears) and removes a page', async () => {
    const registered = await executeOk(gateway.url, RegisterPageDocument, {
      input: { id: '2000000001', name: 'Bistro', accessToken: TOKEN, relayUrl: 'https://bot.example.com/hook' },
    });
    expect(registered.registerPage).toMatchObject({
      id: '2000000001',
      name: 'Bistro',
      hasAccessToken: true,
      relayUrl: 'https://bot.example.com/hook',
    });
    expect(Number.isNaN(Date.parse(registered.registerPage.createdAt))).toBe(false);

    const { pages } = await executeOk(gateway.url, PagesDocument, { first: 1 });
    expect(pages.totalCount).toBeGreaterThanOrEqual(2);
    expect(pages.edges).toHaveLength(1);
    expect(pages.pageInfo.hasNextPage).toBe(true);
    const rest = await executeOk(gateway.url, PagesDocument, { first: 100, after: pages.pageInfo.endCursor });
    const ids = [pages.edges[0].node.id, ...rest.pages.edges.map((edge) => edge.node.id)];
    expect(ids).toContain('2000000001');
    expect(ids).toContain(TEST_PAGE_ID);
    expect(new Set(ids).size).toBe(ids.length);

    // Only the name changes: the token and relay URL are left out.
    const renamed = await executeOk(gateway.url, UpdatePageDocument, { input: { id: '2000000001', name: 'Bistro 2' } });
    expect(renamed.updatePage).toMatchObject({ name: 'Bistro 2', hasAccessToken: true, relayUrl: 'https://bot.example.com/hook' });
    // null clears.
    const cleared = await executeOk(gateway.url, UpdatePageDocument, { input: { id: '2000000001', relayUrl: null, accessToken: null } });
    expect(cleared.updatePage).toMatchObject({ name: 'Bistro 2', hasAccessToken: false, relayUrl: null });
    expect(await pageRow(gateway, '2000000001')).toEqual({ token_ciphertext: null, token_key_id: null });
    const { page } = await executeOk(gateway.url, PageDocument, { id: '2000000001' });
    expect(page).toMatchObject({ name: 'Bistro 2', hasAccessToken: false, relayUrl: null });

    expect((await executeOk(gateway.url, RemovePageDocument, { id: '2000000001' })).removePage).toBe('2000000001');
    expect((await executeOk(gateway.url, PageDocument, { id: '2000000001' })).page).toBeNull();
  });

  it('removes a page with its codes, images, scans and counters, and only those', async () => {
    const doomed = '2000000002';
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: doomed } });
    for (const pageId of [doomed, TEST_PAGE_ID]) {
      await executeOk(gateway.url, GenerateCodeDocument, { input: { pageId, data: { ref: 'table-1' }, imageSize: 100 } });
      expect((await postScans(gateway.url, [scanOf(pageId, { ref: 'table-1' }), scanOf(pageId, { ref: 'orphan' })])).status).toBe(200);
    }
    const { page } = await executeOk(gateway.url, PageDocument, { id: doomed });
    expect(page?.codes.totalCount).toBe(1);
    expect(page?.codes.edges.map((edge) => edge.node)).toEqual([expect.objectContaining({ ref: 'table-1', pageId: doomed })]);
    const before = {
      code: await countRows(gateway, 'code'),
      image: await countRows(gateway, 'code_image'),
      scan: await countRows(gateway, 'scan'),
      counter: await countRows(gateway, 'ref_counter'),
    };
    const keptScans = await countWhere(gateway, 'scan', 'page_id', TEST_PAGE_ID);

    await executeOk(gateway.url, RemovePageDocument, { id: doomed });

    for (const [table, column] of [
      ['code', 'page_id'],
      ['scan', 'page_id'],
      ['ref_counter', 'page_id'],
      ['page', 'id'],
    ]) {
      expect(await countWhere(gateway, table, column, doomed)).toBe(0);
    }
    expect(await countRows(gateway, 'code')).toBe(before.code - 1);
    expect(await countRows(gateway, 'code_image')).toBe(before.image - 1);
    expect(await countRows(gateway, 'scan')).toBe(before.scan - 2);
    expect(await countRows(gateway, 'ref_counter')).toBe(before.counter - 2);
    expect(await countWhere(gateway, 'scan', 'page_id', TEST_PAGE_ID)).toBe(keptScans);
    const other = await executeOk(gateway.url, PageDocument, { id: TEST_PAGE_ID });
    expect(other.page?.codes.edges.some((edge) => edge.node.ref === 'table-1')).toBe(true);
    // Generating for the removed page is NOT_FOUND again.
    const refused = await execute(gateway.url, GenerateCodeDocument, { input: { pageId: doomed, imageSize: 100 } });
    expect(refused.errors?.[0].extensions).toMatchObject({ code: 'NOT_FOUND', field: 'pageId' });
  });

  it.each([
    [{ id: 'abc' }, 'id'],
    [{ id: '1'.repeat(33) }, 'id'],
    [{ id: '2000000003', name: 'n'.repeat(201) }, 'name'],
    [{ id: '2000000003', relayUrl: 'ftp://example.com/' }, 'relayUrl'],
    [{ id: '2000000003', relayUrl: '/relative' }, 'relayUrl'],
    [{ id: '2000000003', accessToken: '' }, 'accessToken'],
    [{ id: '2000000003', accessToken: 't'.repeat(1001) }, 'accessToken'],
  ])('refuses registerPage(%j) with BAD_USER_INPUT on the field', async (input, field) => {
    const result = await execute(gateway.url, RegisterPageDocument, { input });
    expect(result.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect((await executeOk(gateway.url, PageDocument, { id: '2000000003' })).page).toBeNull();
  });

  it('refuses a bad value in updatePage and keeps the page as it was', async () => {
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: '2000000004', name: 'Kept' } });
    const result = await execute(gateway.url, UpdatePageDocument, { input: { id: '2000000004', name: 'New', relayUrl: 'nope' } });
    expect(result.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'relayUrl' });
    expect((await executeOk(gateway.url, PageDocument, { id: '2000000004' })).page?.name).toBe('Kept');
  });

  it('refuses a duplicate id, and an unknown id for update and remove', async () => {
    const duplicate = await execute(gateway.url, RegisterPageDocument, { input: { id: TEST_PAGE_ID } });
    expect(duplicate.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
    const update = await execute(gateway.url, UpdatePageDocument, { input: { id: '2999999999', name: 'x' } });
    expect(update.errors?.[0].extensions).toMatchObject({ code: 'NOT_FOUND', field: 'id' });
    const remove = await execute(gateway.url, RemovePageDocument, { id: '2999999999' });
    expect(remove.errors?.[0].extensions).toMatchObject({ code: 'NOT_FOUND', field: 'id' });
  });

  it('keeps the token only encrypted: never in the database, a response or the logs', async () => {
    const secret = `EAAG-never-stored-${randomBytes(8).toString('hex')}`;
    const response = await execute(gateway.url, RegisterPageDocument, { input: { id: '2000000005', accessToken: secret } });
    expect(JSON.stringify(response)).not.toContain(secret);
    await executeOk(gateway.url, UpdatePageDocument, { input: { id: '2000000005', accessToken: `${secret}-2` } });
    const row = await pageRow(gateway, '2000000005');
    expect(row?.token_key_id).toBe(keyIdOf(KEY));
    expect(row?.token_ciphertext).toBeTruthy();
    await gateway.db.dataSource.query(kind === 'sqlite' ? 'PRAGMA wal_checkpoint(TRUNCATE)' : 'SELECT 1');
    const stored = await databaseText(gateway);
    expect(stored).toContain('2000000005');
    expect(stored).not.toContain(secret);
    expect(stored).not.toContain(Buffer.from(secret).toString('base64'));
    expect(gateway.logs.text).not.toContain(secret);
  });
});

describe.each(DATABASE_KINDS)('a page token in use on %s', (kind) => {
  it('is in no log line, response or stored row: on Graph API calls, an upstream error echoing it, and the Messenger Code API', async () => {
    const secret = `EAAG-in-use-${randomBytes(8).toString('hex')}`;
    const fake = await FakeGraphApi.start();
    let gateway: TestGateway | undefined;
    try {
      gateway = await startTestGateway(kind, {
        ENCRYPTION_KEY: KEY_HEX,
        CODE_PROVIDER: 'facebook',
        GRAPH_API_URL: fake.url,
        GRAPH_API_MAX_ATTEMPTS: '1',
        PAGE_ACCESS_TOKEN: 'default-page-token',
        LOG_LEVEL: 'debug',
      });
      await executeOk(gateway.url, RegisterPageDocument, { input: { id: '4000000001', accessToken: secret } });
      const generate = { input: { pageId: '4000000001', data: { ref: 'in-use' }, imageSize: 120 } };
      await executeOk(gateway.url, GenerateCodeDocument, generate);
      // An upstream error whose message quotes the token, as a careless proxy might.
      fake.enqueue({ kind: 'graphError', code: 190, message: `Invalid OAuth access token: ${secret}` });
      const failed = await execute(gateway.url, GenerateCodeDocument, { input: { ...generate.input, data: { ref: 'refused' } } });
      expect(failed.errors).toBeDefined();
      const localApi = await fetch(`${gateway.url}/v2.6/me/messenger_codes?access_token=${encodeURIComponent(secret)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'standard', data: { ref: 'by-token' }, image_size: 120 }),
      });
      const localAnswer = await localApi.text();
      expect(localApi.status).toBe(200);

      expect(fake.requests.map((request) => request.query.access_token)).toEqual([secret, secret, secret]);
      expect(JSON.stringify(failed)).not.toContain(secret);
      expect(localAnswer).not.toContain(secret);
      expect(gateway.logs.lines.length).toBeGreaterThan(0);
      expect(gateway.logs.lines.filter((line) => line.includes(secret))).toEqual([]);
      await gateway.db.dataSource.query(kind === 'sqlite' ? 'PRAGMA wal_checkpoint(TRUNCATE)' : 'SELECT 1');
      expect(await databaseText(gateway)).not.toContain(secret);
    } finally {
      await gateway?.stop();
      await fake.stop();
    }
  });
});

describe.each(DATABASE_KINDS)('page tokens and keys across restarts on %s', (kind) => {
  let database: TestDatabase;
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway(kind, { ENCRYPTION_KEY: OLD_KEY_BASE64, PAGE_ACCESS_TOKEN: 'env-token-1' });
    database = gateway.database;
  });

  it('registers the default page once, with PAGE_ACCESS_TOKEN encrypted, and re-encrypts under a new key at start', async () => {
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: '3000000001', accessToken: 'own-token-1' } });
    const oldKeyId = keyIdOf(Buffer.from(OLD_KEY_BASE64, 'base64'));
    expect((await pageRow(gateway, TEST_PAGE_ID))?.token_key_id).toBe(oldKeyId);
    expect((await pageRow(gateway, '3000000001'))?.token_key_id).toBe(oldKeyId);
    await gateway.stop();

    // The new key, the old one as previous: every token is now under the new key.
    gateway = await startTestGateway(database, {
      ENCRYPTION_KEY: KEY_HEX,
      ENCRYPTION_KEY_PREVIOUS: ` ${randomBytes(32).toString('hex')}, ${OLD_KEY_BASE64}`,
      PAGE_ACCESS_TOKEN: 'env-token-1',
      LOG_LEVEL: 'info',
    });
    expect(await countWhere(gateway, 'page', 'id', TEST_PAGE_ID)).toBe(1);
    expect((await pageRow(gateway, TEST_PAGE_ID))?.token_key_id).toBe(keyIdOf(KEY));
    expect((await pageRow(gateway, '3000000001'))?.token_key_id).toBe(keyIdOf(KEY));
    expect(gateway.logs.text).toContain('re-encrypted');
    await gateway.stop();

    // Without the old key, the tokens still decrypt: the FACEBOOK provider gets them.
    const fake = await FakeGraphApi.start();
    try {
      gateway = await startTestGateway(database, {
        ENCRYPTION_KEY: KEY_HEX,
        CODE_PROVIDER: 'facebook',
        GRAPH_API_URL: fake.url,
        // A changed PAGE_ACCESS_TOKEN replaces the stored one of the default page.
        PAGE_ACCESS_TOKEN: 'env-token-2',
      });
      await executeOk(gateway.url, GenerateCodeDocument, { input: { pageId: '3000000001', data: { ref: 'r1' }, imageSize: 120 } });
      await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'r1' }, imageSize: 120 } });
      expect(fake.requests.map((request) => request.query)).toEqual([
        { access_token: 'own-token-1', appsecret_proof: appSecretProof('own-token-1', TEST_APP_SECRET) },
        { access_token: 'env-token-2', appsecret_proof: appSecretProof('env-token-2', TEST_APP_SECRET) },
      ]);
      expect((await pageRow(gateway, TEST_PAGE_ID))?.token_key_id).toBe(keyIdOf(KEY));
      await gateway.stop();
    } finally {
      await fake.stop();
    }

    // A key that decrypts nothing: the token stays, unusable, and the start says so.
    gateway = await startTestGateway(database, { ENCRYPTION_KEY: randomBytes(32).toString('hex'), LOG_LEVEL: 'warn' });
    expect(gateway.logs.text).toContain('ENCRYPTION_KEY_PREVIOUS');
    expect(gateway.logs.text).not.toContain('own-token-1');
    expect((await executeOk(gateway.url, PageDocument, { id: '3000000001' })).page?.hasAccessToken).toBe(true);
  });
});

describe.each(DATABASE_KINDS)('pages without ENCRYPTION_KEY on %s', (kind) => {
  let gateway: TestGateway;
  let fake: FakeGraphApi;

  beforeAll(async () => {
    fake = await FakeGraphApi.start();
    gateway = await startTestGateway(kind, { CODE_PROVIDER: 'facebook', GRAPH_API_URL: fake.url, PAGE_ACCESS_TOKEN: 'memory-only-token' });
  });
  afterAll(() => fake.stop());

  it('keeps PAGE_ACCESS_TOKEN in memory only, and uses it', async () => {
    expect((await executeOk(gateway.url, PageDocument, { id: TEST_PAGE_ID })).page?.hasAccessToken).toBe(true);
    expect(await pageRow(gateway, TEST_PAGE_ID)).toEqual({ token_ciphertext: null, token_key_id: null });
    await executeOk(gateway.url, GenerateCodeDocument, { input: { imageSize: 120 } });
    expect(fake.requests.at(-1)?.query).toEqual({
      access_token: 'memory-only-token',
      appsecret_proof: appSecretProof('memory-only-token', TEST_APP_SECRET),
    });
  });

  it('refuses to store a token, saying to set ENCRYPTION_KEY', async () => {
    const result = await execute(gateway.url, RegisterPageDocument, { input: { id: '4000000001', accessToken: 'tok' } });
    expect(result.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'accessToken' });
    expect(result.errors?.[0].message).toContain('ENCRYPTION_KEY');
    expect((await executeOk(gateway.url, PageDocument, { id: '4000000001' })).page).toBeNull();
  });

  it('refuses generateCode for a page without a token with BAD_USER_INPUT on pageId, and for an unregistered page with NOT_FOUND', async () => {
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: '4000000002', name: 'No token' } });
    const before = fake.requests.length;
    const noToken = await execute(gateway.url, GenerateCodeDocument, { input: { pageId: '4000000002', imageSize: 120 } });
    expect(noToken.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'pageId' });
    expect(noToken.errors?.[0].message).toContain('updatePage');
    const unknown = await execute(gateway.url, GenerateCodeDocument, { input: { pageId: '4999999999', imageSize: 120 } });
    expect(unknown.errors?.[0].extensions).toMatchObject({ code: 'NOT_FOUND', field: 'pageId' });
    expect(fake.requests.length).toBe(before);
  });
});

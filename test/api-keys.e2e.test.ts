import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { print } from 'graphql';
import WebSocket from 'ws';
import {
  ApiKeysDocument,
  CreateApiKeyDocument,
  RegisterPageDocument,
  RevokeApiKeyDocument,
  ScannedDocument,
  ViewerDocument,
  type CreateApiKeyInput,
  type CreateApiKeyMutation,
} from './generated/graphql';
import { generateKey, hashKey, isWellFormedKey } from '../src/auth/key-format';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { databaseText } from './support/database-text';
import { startTestGateway, TEST_PAGE_ID, TEST_VERIFY_TOKEN, type TestGateway } from './support/gateway';
import { execute, executeOk } from './support/graphql-client';
import { eventually, waitForSubscribers } from './support/subscriptions';
import { postScans, scanOf, TEST_APP_SECRET } from './support/webhook';

reportSkippedDatabases();

const ADMIN_API_KEY = 'admin-api-key-of-the-api-key-tests';
const PAGE_A = '5100000001';
const PAGE_B = '5100000002';
const KEY_SHAPE = /^mcg_[0-9A-Za-z]{38}$/;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** A wait bound for what the gateway does on its own (the 2 s revocation poll), not a speed assertion. */
const POLL_WAIT_MS = 15_000;
/** Tests that start processes or send thousands of requests: a bound for a slow machine. */
const SLOW_TEST_MS = 120_000;

const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });
const asAdmin = bearer(ADMIN_API_KEY);

type Created = CreateApiKeyMutation['createApiKey'];

async function createKey(gateway: TestGateway, input: CreateApiKeyInput, headers: Record<string, string> = asAdmin): Promise<Created> {
  return (await executeOk(gateway.url, CreateApiKeyDocument, { input }, headers)).createApiKey;
}

async function keyCount(gateway: TestGateway, headers: Record<string, string> = asAdmin): Promise<number> {
  return (await executeOk(gateway.url, ApiKeysDocument, { first: 1 }, headers)).apiKeys.totalCount;
}

/** Every key of the gateway, oldest first, read page by page. */
async function allKeys(gateway: TestGateway, headers: Record<string, string> = asAdmin) {
  const keys = [];
  let after: string | null = null;
  do {
    const page: Awaited<ReturnType<typeof listKeys>> = await listKeys(gateway, 100, after, headers);
    keys.push(...page.edges.map((edge) => edge.node));
    after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
  } while (after !== null);
  return keys;
}

async function listKeys(gateway: TestGateway, first: number, after: string | null, headers: Record<string, string> = asAdmin) {
  return (await executeOk(gateway.url, ApiKeysDocument, { first, after }, headers)).apiKeys;
}

/** A GraphQL request the typed documents cannot express (an invalid one), as any client would send it. */
async function rawGraphql(
  gateway: TestGateway,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<{
  status: number;
  text: string;
  body: { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] };
}> {
  const response = await fetch(`${gateway.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) as never };
}

async function expectUnauthenticated(gateway: TestGateway, headers: Record<string, string>): Promise<void> {
  const result = await execute(gateway.url, ViewerDocument, {}, headers);
  expect(result.status).toBe(401);
  expect(result.errors?.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
  expect(result.data ?? null).toBeNull();
}

/** A string shaped like a key (mcg_ and 38 base62 characters) whose checksum is wrong. */
function badChecksumKey(): string {
  for (;;) {
    const candidate = `mcg_${Array.from(randomBytes(38), (byte) => BASE62[byte % 62]).join('')}`;
    if (!isWellFormedKey(candidate)) return candidate;
  }
}

/** A key with one character of its secret changed: a typo, refused by the checksum. */
function typoOf(key: string): string {
  const index = 10;
  return `${key.slice(0, index)}${key[index] === 'A' ? 'B' : 'A'}${key.slice(index + 1)}`;
}

const sockets = new Set<WebSocket>();
afterAll(() => {
  for (const socket of sockets) socket.terminate();
});

/**
 * A graphql-transport-ws client on a raw WebSocket, so the close code the gateway sends
 * is seen as it is: connection_init with `payload`, then one `scanned` subscription.
 */
class ScanSocket {
  readonly scans: { scanned: { ref: string | null; pageId: string } }[] = [];
  closeCode: number | undefined;
  readonly closed: Promise<number>;
  private readonly acknowledged: Promise<void>;
  private listeners = new Set<() => void>();

  private constructor(
    private readonly socket: WebSocket,
    payload: Record<string, unknown>,
  ) {
    sockets.add(socket);
    this.closed = new Promise((resolve) =>
      socket.once('close', (code: number) => {
        this.closeCode = code;
        this.notify();
        resolve(code);
      }),
    );
    this.acknowledged = new Promise((resolve, reject) => {
      socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload })));
      socket.on('message', (data: WebSocket.RawData) => {
        const message = JSON.parse(String(data)) as { type: string; payload?: { data?: unknown } };
        if (message.type === 'connection_ack') resolve();
        if (message.type === 'next' && message.payload?.data) this.scans.push(message.payload.data as never);
        this.notify();
      });
      void this.closed.then((code) => reject(new Error(`closed with ${code} before connection_ack`)));
    });
    this.acknowledged.catch(() => undefined);
  }

  /** Opens a socket and waits for connection_ack (rejects when the gateway closes it instead). */
  static async open(gateway: TestGateway, payload: Record<string, unknown> = {}, pageId?: string): Promise<ScanSocket> {
    const scanSocket = ScanSocket.connect(gateway, payload);
    await scanSocket.acknowledged;
    scanSocket.socket.send(
      JSON.stringify({ id: '1', type: 'subscribe', payload: { query: print(ScannedDocument), variables: pageId ? { pageId } : {} } }),
    );
    return scanSocket;
  }

  /** Opens a socket and sends connection_init, without waiting for anything. */
  static connect(gateway: TestGateway, payload: Record<string, unknown> = {}): ScanSocket {
    return new ScanSocket(new WebSocket(`${gateway.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws'), payload);
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN && this.closeCode === undefined;
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }

  /** Resolves when a scan of `ref` has arrived; fails if the socket closes first. */
  waitForScan(ref: string, timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.scans.some((scan) => scan.scanned.ref === ref)) {
          done();
          resolve();
        } else if (this.closeCode !== undefined) {
          done();
          reject(new Error(`socket closed with ${this.closeCode} before the scan of "${ref}" arrived`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for the scan of "${ref}"`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** The close code, waiting at most `timeoutMs` (a bound, not an assertion on speed). */
  async closeCodeWithin(timeoutMs: number): Promise<number | 'still open'> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'still open'>((resolve) => {
      timer = setTimeout(() => resolve('still open'), timeoutMs);
    });
    const code = await Promise.race([this.closed, timeout]);
    clearTimeout(timer);
    return code;
  }

  close(): void {
    this.socket.close(1000);
  }
}

describe.each(DATABASE_KINDS)('creating API keys on %s', (kind) => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway(kind, { ADMIN_API_KEY, LOG_LEVEL: 'debug' });
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_A } }, asAdmin);
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_B } }, asAdmin);
  });

  it('is never open with ADMIN_API_KEY set, even before any key is stored; viewer of ADMIN_API_KEY is ADMIN with no apiKey', async () => {
    expect(await keyCount(gateway)).toBe(0);
    await expectUnauthenticated(gateway, {});
    await expectUnauthenticated(gateway, bearer(generateKey()));
    await expectUnauthenticated(gateway, bearer(`${ADMIN_API_KEY}x`));
    expect((await executeOk(gateway.url, ViewerDocument, {}, asAdmin)).viewer).toEqual({ role: 'ADMIN', pageIds: null, apiKey: null });
  });

  it('returns the key once, shaped mcg_…, with its record; the key works at once as a VIEWER of its two pages', async () => {
    const before = Date.now();
    const created = await createKey(gateway, { name: 'lobby dashboard', role: 'VIEWER', pageIds: [PAGE_A, PAGE_B] });
    expect(created.key).toMatch(KEY_SHAPE);
    expect(isWellFormedKey(created.key)).toBe(true);
    expect(created.apiKey).toEqual({
      id: expect.any(String),
      name: 'lobby dashboard',
      role: 'VIEWER',
      pageIds: [PAGE_A, PAGE_B],
      prefix: created.key.slice(0, 12),
      createdAt: expect.any(String),
      lastUsedAt: null,
      revokedAt: null,
    });
    expect(Date.parse(created.apiKey.createdAt)).toBeGreaterThanOrEqual(before - 1000);

    const viewer = (await executeOk(gateway.url, ViewerDocument, {}, bearer(created.key))).viewer;
    expect(viewer.role).toBe('VIEWER');
    expect(viewer.pageIds).toEqual([PAGE_A, PAGE_B]);
    expect(viewer.apiKey?.id).toBe(created.apiKey.id);
    expect(viewer.apiKey?.prefix).toBe(created.key.slice(0, 12));

    // The list shows it, never the secret.
    const listed = await listKeys(gateway, 100, null);
    expect(listed.edges.map((edge) => edge.node.id)).toContain(created.apiKey.id);
  });

  it('stores neither the key nor its secret part anywhere in the database, and logs neither (LOG_LEVEL debug)', async () => {
    const created = await createKey(gateway, { name: 'secret witness', role: 'EDITOR' });
    // Used over HTTP and over a WebSocket, so both paths had a chance to log it.
    await executeOk(gateway.url, ViewerDocument, {}, bearer(created.key));
    const socket = await ScanSocket.open(gateway, { authorization: `Bearer ${created.key}` }, PAGE_A);
    await waitForSubscribers(gateway, 1);
    socket.close();
    await socket.closed;
    await expectUnauthenticated(gateway, bearer(typoOf(created.key)));

    const stored = await databaseText(gateway);
    // What is stored instead: the hash, so the text does cover the key table.
    expect(stored).toContain(hashKey(created.key));
    expect(stored).toContain(created.apiKey.id);
    for (const secret of [created.key, created.key.slice(12), created.key.slice(4, 36)]) {
      expect(stored).not.toContain(secret);
      expect(stored).not.toContain(Buffer.from(secret).toString('base64'));
    }
    expect(gateway.logs.text).toContain(created.apiKey.id);
    expect(gateway.logs.entries().some((entry) => entry.level === 'debug')).toBe(true);
    for (const secret of [created.key, created.key.slice(12), created.key.slice(4, 36)]) {
      expect(gateway.logs.text).not.toContain(secret);
    }
  });

  it('accepts a name of 100 characters', async () => {
    const created = await createKey(gateway, { name: 'n'.repeat(100), role: 'EDITOR', pageIds: [PAGE_B] });
    expect(created.apiKey.name).toBe('n'.repeat(100));
    expect(created.apiKey.pageIds).toEqual([PAGE_B]);
  });

  it.each<[string, CreateApiKeyInput, string, string]>([
    ['an empty name', { name: '', role: 'VIEWER' }, 'BAD_USER_INPUT', 'name'],
    ['a blank name', { name: ' \t ', role: 'VIEWER' }, 'BAD_USER_INPUT', 'name'],
    ['a name of 101 characters', { name: 'n'.repeat(101), role: 'VIEWER' }, 'BAD_USER_INPUT', 'name'],
    ['pageIds for an ADMIN key', { name: 'scoped admin', role: 'ADMIN', pageIds: [PAGE_A] }, 'BAD_USER_INPUT', 'pageIds'],
    ['pageIds []', { name: 'no pages', role: 'VIEWER', pageIds: [] }, 'BAD_USER_INPUT', 'pageIds'],
    [
      'an unregistered page among pageIds',
      { name: 'unknown page', role: 'EDITOR', pageIds: [PAGE_A, '5199999999'] },
      'NOT_FOUND',
      'pageIds[1]',
    ],
  ])('refuses %s with the precise code and field, and stores nothing', async (_name, input, code, field) => {
    const before = await keyCount(gateway);
    const result = await execute(gateway.url, CreateApiKeyDocument, { input }, asAdmin);
    expect(result.data ?? null).toBeNull();
    expect(result.errors).toHaveLength(1);
    expect(result.errors?.[0].extensions).toMatchObject({ code, field });
    expect(result.errors?.[0].path).toEqual(['createApiKey']);
    expect(await keyCount(gateway)).toBe(before);
  });

  it('refuses an unknown role before execution (BAD_USER_INPUT on role, HTTP 400), in the document or in a variable, and stores nothing', async () => {
    const before = await keyCount(gateway);
    for (const [query, variables] of [
      ['mutation { createApiKey(input: { name: "owner", role: OWNER }) { key } }', {}],
      [print(CreateApiKeyDocument), { input: { name: 'owner', role: 'OWNER' } }],
    ] as const) {
      const result = await rawGraphql(gateway, query, variables, asAdmin);
      expect(result.status).toBe(400);
      expect(result.body.data).toBeUndefined();
      expect(result.body.errors).toHaveLength(1);
      expect(result.body.errors?.[0].message).toContain('"OWNER" does not exist in "Role" enum');
      expect(result.body.errors?.[0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'role' });
    }
    expect(await keyCount(gateway)).toBe(before);
  });

  it.each([
    ['an unknown uuid', randomUUID()],
    ['an id of another shape', 'no-such-key'],
  ])('answers revokeApiKey of %s with NOT_FOUND on id and revokes nothing', async (_name, id) => {
    const keysBefore = await allKeys(gateway);
    const result = await execute(gateway.url, RevokeApiKeyDocument, { id }, asAdmin);
    expect(result.data ?? null).toBeNull();
    expect(result.errors?.[0].extensions).toMatchObject({ code: 'NOT_FOUND', field: 'id' });
    expect(await allKeys(gateway)).toEqual(keysBefore);
  });
});

describe.each(DATABASE_KINDS)('the open gateway on %s', (kind) => {
  let gateway: TestGateway;
  let openSocket: ScanSocket;
  let viewerKey: Created;

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
  });

  it('serves a fresh gateway without ADMIN_API_KEY as ADMIN whatever Authorization it carries', async () => {
    for (const headers of [
      {},
      bearer(generateKey()),
      bearer(badChecksumKey()),
      bearer('mcg_short'),
      { authorization: 'Basic dXNlcjpwYXNzd29yZA==' },
      { authorization: 'Bearer' },
      bearer('x'.repeat(500)),
    ]) {
      const result = await execute(gateway.url, ViewerDocument, {}, headers);
      expect(result.status).toBe(200);
      expect(result.data?.viewer).toEqual({ role: 'ADMIN', pageIds: null, apiKey: null });
    }
    // ADMIN indeed: it administers.
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_A } }, bearer(generateKey()));
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_B } });
    expect((await executeOk(gateway.url, ApiKeysDocument, {}, {})).apiKeys.totalCount).toBe(0);
  });

  it('lets a WebSocket in without a key while open', async () => {
    openSocket = await ScanSocket.open(gateway, {}, PAGE_A);
    await waitForSubscribers(gateway, 1);
    expect((await postScans(gateway.url, [scanOf(PAGE_A, { ref: 'while-open' })])).status).toBe(200);
    await openSocket.waitForScan('while-open');
  });

  it('is locked by the first stored key, even a VIEWER one: no key, an unknown well-formed key and a malformed key are 401', async () => {
    viewerKey = await createKey(gateway, { name: 'first key', role: 'VIEWER', pageIds: [PAGE_A, PAGE_B] }, {});
    await expectUnauthenticated(gateway, {});
    await expectUnauthenticated(gateway, bearer(generateKey()));
    await expectUnauthenticated(gateway, bearer(badChecksumKey()));
    await expectUnauthenticated(gateway, bearer(typoOf(viewerKey.key)));
    await expectUnauthenticated(gateway, bearer('mcg_short'));
    await expectUnauthenticated(gateway, { authorization: viewerKey.key });
    await expectUnauthenticated(gateway, { authorization: 'Basic dXNlcjpwYXNzd29yZA==' });
    // Nothing more can be created without a key.
    const refused = await execute(gateway.url, CreateApiKeyDocument, { input: { name: 'second', role: 'ADMIN' } }, {});
    expect(refused.status).toBe(401);

    const viewer = (await executeOk(gateway.url, ViewerDocument, {}, bearer(viewerKey.key))).viewer;
    expect(viewer).toEqual({ role: 'VIEWER', pageIds: [PAGE_A, PAGE_B], apiKey: expect.objectContaining({ id: viewerKey.apiKey.id }) });
    // The VIEWER key does not administer.
    const forbidden = await execute(gateway.url, ApiKeysDocument, {}, bearer(viewerKey.key));
    expect(forbidden.errors?.[0].extensions?.code).toBe('FORBIDDEN');
  });

  it('closes a WebSocket let in while open with 4403 once the first key is stored; a keyed socket stays open and keeps receiving scans', async () => {
    expect(await openSocket.closeCodeWithin(POLL_WAIT_MS)).toBe(4403);
    await eventually(() => gateway.services.feed.subscriberCount === 0, 5000, 'the closed socket to unsubscribe');
    const keyed = await ScanSocket.open(gateway, { authorization: `Bearer ${viewerKey.key}` }, PAGE_A);
    await waitForSubscribers(gateway, 1);
    expect((await postScans(gateway.url, [scanOf(PAGE_A, { ref: 'after-lock' })])).status).toBe(200);
    await keyed.waitForScan('after-lock');
    expect(keyed.isOpen).toBe(true);
    expect(openSocket.scans.map((scan) => scan.scanned.ref)).toEqual(['while-open']);

    // A new socket without a key, or with an unknown one, is refused.
    for (const payload of [{}, { authorization: `Bearer ${generateKey()}` }, { authorization: 'Bearer mcg_short' }]) {
      expect(await ScanSocket.connect(gateway, payload).closed).toBe(4403);
    }
  });
});

describe.each(DATABASE_KINDS)('locking an open gateway with the first key of each role on %s', (kind) => {
  it.each<['ADMIN' | 'EDITOR']>([['ADMIN'], ['EDITOR']])('a first %s key locks it', async (role) => {
    const gateway = await startTestGateway(kind);
    const created = await createKey(gateway, { name: `first ${role}`, role }, {});
    await expectUnauthenticated(gateway, {});
    await expectUnauthenticated(gateway, bearer(generateKey()));
    expect((await executeOk(gateway.url, ViewerDocument, {}, bearer(created.key))).viewer).toMatchObject({ role, pageIds: null });
    await gateway.stop();
  });
});

describe.each(DATABASE_KINDS)('listing API keys on %s', (kind) => {
  let gateway: TestGateway;
  const created: Created[] = [];

  beforeAll(async () => {
    gateway = await startTestGateway(kind, { ADMIN_API_KEY });
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_A } }, asAdmin);
    const inputs: CreateApiKeyInput[] = [
      { name: 'one', role: 'ADMIN' },
      { name: 'two', role: 'EDITOR', pageIds: [PAGE_A] },
      { name: 'three', role: 'VIEWER', pageIds: [PAGE_A] },
      { name: 'four', role: 'VIEWER' },
      { name: 'five', role: 'EDITOR' },
    ];
    for (const input of inputs) {
      // Each key a millisecond younger than the one before, so "oldest first" has one answer.
      const previous = created.at(-1);
      if (previous) await eventually(() => Date.now() > Date.parse(previous.apiKey.createdAt), 5000, 'the next millisecond');
      created.push(await createKey(gateway, input));
    }
  });

  it('pages through every key oldest first with first/after, with totalCount', async () => {
    const first = await listKeys(gateway, 2, null);
    expect(first.totalCount).toBe(5);
    expect(first.pageInfo.hasNextPage).toBe(true);
    expect(first.edges.map((edge) => edge.node.name)).toEqual(['one', 'two']);
    expect(first.pageInfo.endCursor).toBe(first.edges[1].cursor);

    const second = await listKeys(gateway, 2, first.pageInfo.endCursor);
    expect(second.totalCount).toBe(5);
    expect(second.pageInfo.hasNextPage).toBe(true);
    expect(second.edges.map((edge) => edge.node.name)).toEqual(['three', 'four']);

    const third = await listKeys(gateway, 2, second.pageInfo.endCursor);
    expect(third.pageInfo.hasNextPage).toBe(false);
    expect(third.edges.map((edge) => edge.node.name)).toEqual(['five']);

    const all = [...first.edges, ...second.edges, ...third.edges].map((edge) => edge.node);
    expect(all).toEqual(created.map((key) => key.apiKey));
    // The same from a cursor in the middle: after "one".
    expect((await listKeys(gateway, 10, first.edges[0].cursor)).edges.map((edge) => edge.node.name)).toEqual([
      'two',
      'three',
      'four',
      'five',
    ]);
  });

  it('includes revoked keys with their revokedAt', async () => {
    const revoked = (await executeOk(gateway.url, RevokeApiKeyDocument, { id: created[2].apiKey.id }, asAdmin)).revokeApiKey;
    expect(revoked.revokedAt).not.toBeNull();
    const all = await allKeys(gateway);
    expect(all).toHaveLength(5);
    expect(all.map((key) => key.name)).toEqual(['one', 'two', 'three', 'four', 'five']);
    expect(all[2]).toEqual({ ...created[2].apiKey, revokedAt: revoked.revokedAt });
    expect(all.filter((key) => key.revokedAt !== null).map((key) => key.id)).toEqual([created[2].apiKey.id]);
    expect(await keyCount(gateway)).toBe(5);
  });

  it('never shows a secret: ApiKey has no field for it, and no listing carries a key or its hash', async () => {
    const type = await rawGraphql(gateway, '{ __type(name: "ApiKey") { fields { name } } }', {}, asAdmin);
    const fields = (type.body.data as { __type: { fields: { name: string }[] } }).__type.fields.map((field) => field.name);
    expect(fields.sort()).toEqual(['createdAt', 'id', 'lastUsedAt', 'name', 'pageIds', 'prefix', 'revokedAt', 'role']);
    const asked = await rawGraphql(gateway, '{ apiKeys { edges { node { id secretHash } } } }', {}, asAdmin);
    expect(asked.status).toBe(400);
    expect(asked.body.errors?.[0].extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');

    const listing = await rawGraphql(gateway, print(ApiKeysDocument), { first: 100 }, asAdmin);
    expect(listing.status).toBe(200);
    for (const { key } of created) {
      expect(listing.text).toContain(key.slice(0, 12));
      expect(listing.text).not.toContain(key);
      expect(listing.text).not.toContain(key.slice(12));
      expect(listing.text).not.toContain(hashKey(key));
    }
  });

  it('sets lastUsedAt once the key is used', async () => {
    const unused = created[3];
    expect((await allKeys(gateway)).find((key) => key.id === unused.apiKey.id)?.lastUsedAt).toBeNull();
    await executeOk(gateway.url, ViewerDocument, {}, bearer(unused.key));
    let lastUsedAt: string | null | undefined;
    await eventually(
      async () => {
        lastUsedAt = (await allKeys(gateway)).find((key) => key.id === unused.apiKey.id)?.lastUsedAt;
        return lastUsedAt != null;
      },
      POLL_WAIT_MS,
      'lastUsedAt',
    );
    expect(Date.parse(lastUsedAt as string)).toBeGreaterThanOrEqual(Date.parse(unused.apiKey.createdAt));
    // Keys never used keep null.
    expect((await allKeys(gateway)).find((key) => key.id === created[4].apiKey.id)?.lastUsedAt).toBeNull();
  });

  it.each([
    ['EDITOR', 1],
    ['VIEWER', 3],
  ])('refuses keys to an %s key with FORBIDDEN: listing, creating, revoking', async (_role, index) => {
    const headers = bearer(created[index].key);
    const before = await allKeys(gateway);

    const listed = await execute(gateway.url, ApiKeysDocument, {}, headers);
    expect(listed.data ?? null).toBeNull();
    expect(listed.errors?.[0].extensions?.code).toBe('FORBIDDEN');

    const made = await execute(gateway.url, CreateApiKeyDocument, { input: { name: 'escalation', role: 'ADMIN' } }, headers);
    expect(made.data ?? null).toBeNull();
    expect(made.errors?.[0].extensions?.code).toBe('FORBIDDEN');

    const revoked = await execute(gateway.url, RevokeApiKeyDocument, { id: created[0].apiKey.id }, headers);
    expect(revoked.data ?? null).toBeNull();
    expect(revoked.errors?.[0].extensions?.code).toBe('FORBIDDEN');

    const after = await allKeys(gateway);
    expect(after.map(({ lastUsedAt: _lastUsedAt, ...key }) => key)).toEqual(before.map(({ lastUsedAt: _lastUsedAt, ...key }) => key));
  });
});

describe.each(DATABASE_KINDS)('revoking API keys on %s', (kind) => {
  let gateway: TestGateway;
  let admin1: Created;
  let admin2: Created;
  let viewer: Created;
  let editor: Created;

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_A } });
    admin1 = await createKey(gateway, { name: 'admin one', role: 'ADMIN' }, {});
    viewer = await createKey(gateway, { name: 'viewer', role: 'VIEWER', pageIds: [PAGE_A] }, bearer(admin1.key));
    editor = await createKey(gateway, { name: 'editor', role: 'EDITOR' }, bearer(admin1.key));
  });

  it('refuses the very next HTTP request of a revoked key with 401; revoking again returns the same revokedAt', async () => {
    expect((await executeOk(gateway.url, ViewerDocument, {}, bearer(viewer.key))).viewer.role).toBe('VIEWER');
    const revoked = (await executeOk(gateway.url, RevokeApiKeyDocument, { id: viewer.apiKey.id }, bearer(admin1.key))).revokeApiKey;
    // lastUsedAt is written in the background: whatever it is by now.
    expect(revoked).toEqual({ ...viewer.apiKey, lastUsedAt: revoked.lastUsedAt, revokedAt: expect.any(String) });
    await expectUnauthenticated(gateway, bearer(viewer.key));

    const again = (await executeOk(gateway.url, RevokeApiKeyDocument, { id: viewer.apiKey.id }, bearer(admin1.key))).revokeApiKey;
    expect(again.revokedAt).toBe(revoked.revokedAt);
    await expectUnauthenticated(gateway, bearer(viewer.key));
    // The other keys are untouched.
    expect((await executeOk(gateway.url, ViewerDocument, {}, bearer(editor.key))).viewer.role).toBe('EDITOR');
  });

  it('refuses to revoke the last active ADMIN key over the API (BAD_USER_INPUT on id); it stays active', async () => {
    const result = await execute(gateway.url, RevokeApiKeyDocument, { id: admin1.apiKey.id }, bearer(admin1.key));
    expect(result.data ?? null).toBeNull();
    expect(result.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
    expect((await executeOk(gateway.url, ViewerDocument, {}, bearer(admin1.key))).viewer.apiKey?.revokedAt).toBeNull();
    const listed = await allKeys(gateway, bearer(admin1.key));
    expect(listed.find((key) => key.id === admin1.apiKey.id)?.revokedAt).toBeNull();
  });

  it('revokes it once another ADMIN key exists, and then guards the new last one', async () => {
    admin2 = await createKey(gateway, { name: 'admin two', role: 'ADMIN' }, bearer(admin1.key));
    const revoked = (await executeOk(gateway.url, RevokeApiKeyDocument, { id: admin1.apiKey.id }, bearer(admin2.key))).revokeApiKey;
    expect(revoked.revokedAt).not.toBeNull();
    await expectUnauthenticated(gateway, bearer(admin1.key));

    const last = await execute(gateway.url, RevokeApiKeyDocument, { id: admin2.apiKey.id }, bearer(admin2.key));
    expect(last.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
    expect((await executeOk(gateway.url, ViewerDocument, {}, bearer(admin2.key))).viewer.role).toBe('ADMIN');
    // Still locked: the revocations did not open the gateway.
    await expectUnauthenticated(gateway, {});
  });

  it('lets the last stored ADMIN key be revoked when ADMIN_API_KEY is set', async () => {
    const withAdminKey = await startTestGateway(kind, { ADMIN_API_KEY });
    const only = await createKey(withAdminKey, { name: 'only admin', role: 'ADMIN' });
    const revoked = (await executeOk(withAdminKey.url, RevokeApiKeyDocument, { id: only.apiKey.id }, asAdmin)).revokeApiKey;
    expect(revoked.revokedAt).not.toBeNull();
    await expectUnauthenticated(withAdminKey, bearer(only.key));
    await expectUnauthenticated(withAdminKey, {});

    // Also by itself.
    const self = await createKey(withAdminKey, { name: 'self', role: 'ADMIN' });
    expect(
      (await executeOk(withAdminKey.url, RevokeApiKeyDocument, { id: self.apiKey.id }, bearer(self.key))).revokeApiKey.revokedAt,
    ).not.toBeNull();
    await expectUnauthenticated(withAdminKey, bearer(self.key));
  });
});

describe.each(DATABASE_KINDS)('WebSockets of revoked keys on %s', (kind) => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway(kind, { ADMIN_API_KEY });
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_A } }, asAdmin);
  });

  it('closes the sockets of a key revoked through the same gateway with 4403; other keys keep theirs and keep receiving scans', async () => {
    const doomed = await createKey(gateway, { name: 'doomed', role: 'VIEWER', pageIds: [PAGE_A] });
    const kept = await createKey(gateway, { name: 'kept', role: 'VIEWER', pageIds: [PAGE_A] });
    const doomedSockets = [
      await ScanSocket.open(gateway, { authorization: `Bearer ${doomed.key}` }, PAGE_A),
      await ScanSocket.open(gateway, { authorization: `Bearer ${doomed.key}` }),
    ];
    const keptSocket = await ScanSocket.open(gateway, { authorization: `Bearer ${kept.key}` }, PAGE_A);
    const adminSocket = await ScanSocket.open(gateway, { authorization: `Bearer ${ADMIN_API_KEY}` });
    await waitForSubscribers(gateway, 4);
    expect((await postScans(gateway.url, [scanOf(PAGE_A, { ref: 'before-revocation' })])).status).toBe(200);
    for (const socket of [...doomedSockets, keptSocket, adminSocket]) await socket.waitForScan('before-revocation');

    await executeOk(gateway.url, RevokeApiKeyDocument, { id: doomed.apiKey.id }, asAdmin);
    for (const socket of doomedSockets) expect(await socket.closeCodeWithin(POLL_WAIT_MS)).toBe(4403);

    expect((await postScans(gateway.url, [scanOf(PAGE_A, { ref: 'after-revocation' })])).status).toBe(200);
    await keptSocket.waitForScan('after-revocation');
    await adminSocket.waitForScan('after-revocation');
    expect(keptSocket.isOpen).toBe(true);
    expect(adminSocket.isOpen).toBe(true);
    for (const socket of doomedSockets) expect(socket.scans.map((scan) => scan.scanned.ref)).toEqual(['before-revocation']);

    // The revoked key cannot open a new one.
    expect(await ScanSocket.connect(gateway, { authorization: `Bearer ${doomed.key}` }).closed).toBe(4403);
  });

  it('closes a socket on another gateway of the same database with 4403 when the key is revoked elsewhere', async () => {
    const other = await startTestGateway(gateway.database, { ADMIN_API_KEY });
    const doomed = await createKey(gateway, { name: 'doomed elsewhere', role: 'EDITOR' });
    const kept = await createKey(other, { name: 'kept elsewhere', role: 'EDITOR' });
    const doomedSocket = await ScanSocket.open(other, { authorization: `Bearer ${doomed.key}` }, PAGE_A);
    const keptSocket = await ScanSocket.open(other, { authorization: `Bearer ${kept.key}` }, PAGE_A);
    await waitForSubscribers(other, 2);

    await executeOk(gateway.url, RevokeApiKeyDocument, { id: doomed.apiKey.id }, asAdmin);
    // The revocation holds on the other gateway's next HTTP request at once…
    await expectUnauthenticated(other, bearer(doomed.key));
    // …and its socket is closed by the poll.
    expect(await doomedSocket.closeCodeWithin(POLL_WAIT_MS)).toBe(4403);

    expect((await postScans(other.url, [scanOf(PAGE_A, { ref: 'elsewhere' })])).status).toBe(200);
    await keptSocket.waitForScan('elsewhere');
    expect(keptSocket.isOpen).toBe(true);
    await other.stop();
  });
});

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The keys CLI as its own process, compiled on the fly (no build), on the gateway's database. */
function runKeysCli(gateway: TestGateway, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-r', './test/support/run-ts.js', 'scripts/keys.ts', ...args],
      {
        cwd: `${__dirname}/..`,
        env: {
          PATH: process.env.PATH,
          DATABASE_URL: gateway.database.url,
          PAGE_ID: TEST_PAGE_ID,
          APP_SECRET: TEST_APP_SECRET,
          WEBHOOK_VERIFY_TOKEN: TEST_VERIFY_TOKEN,
        },
        timeout: 120_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('the keys CLI on sqlite', () => {
  let gateway: TestGateway;
  let viewerId: string;
  let viewerKey: string;
  let adminKey: string;
  let adminId: string;

  beforeAll(async () => {
    gateway = await startTestGateway('sqlite');
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_A } });
  });

  it(
    'creates a key that works against the running gateway at once, and locks it',
    async () => {
      const admin = await runKeysCli(gateway, ['create', '--name', 'ops', '--role', 'admin']);
      expect(admin).toMatchObject({ code: 0, stderr: '' });
      adminKey = admin.stdout.match(/^mcg_[0-9A-Za-z]{38}$/m)?.[0] as string;
      expect(adminKey).toMatch(KEY_SHAPE);
      await expectUnauthenticated(gateway, {});

      const result = await runKeysCli(gateway, ['create', '--name', 'n', '--role', 'viewer', '--page', PAGE_A]);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      viewerKey = result.stdout.match(/^mcg_[0-9A-Za-z]{38}$/m)?.[0] as string;
      expect(viewerKey).toMatch(KEY_SHAPE);
      expect(result.stdout).toContain('only time the key is shown');

      const viewer = (await executeOk(gateway.url, ViewerDocument, {}, bearer(viewerKey))).viewer;
      expect(viewer).toMatchObject({ role: 'VIEWER', pageIds: [PAGE_A] });
      viewerId = viewer.apiKey?.id as string;
      expect(result.stdout).toContain(viewerId);
      expect(result.stdout).toContain(viewerKey.slice(0, 12));
      const adminViewer = (await executeOk(gateway.url, ViewerDocument, {}, bearer(adminKey))).viewer;
      expect(adminViewer).toMatchObject({ role: 'ADMIN', pageIds: null });
      adminId = adminViewer.apiKey?.id as string;
    },
    SLOW_TEST_MS,
  );

  it(
    'lists the keys without their secrets',
    async () => {
      const result = await runKeysCli(gateway, ['list']);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      const lines = result.stdout.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toContain(adminId);
      expect(lines[0]).toContain('ADMIN');
      expect(lines[1]).toContain(viewerId);
      expect(lines[1]).toContain(viewerKey.slice(0, 12));
      expect(lines[1]).toContain('VIEWER');
      expect(lines[1]).toContain('"n"');
      expect(lines[1]).toContain(PAGE_A);
      expect(lines[1]).toContain('active');
      for (const key of [viewerKey, adminKey]) {
        expect(result.stdout).not.toContain(key);
        expect(result.stdout).not.toContain(key.slice(12));
        expect(result.stdout).not.toContain(hashKey(key));
      }
    },
    SLOW_TEST_MS,
  );

  it(
    'revokes a key: the running gateway refuses it with 401 at once',
    async () => {
      const result = await runKeysCli(gateway, ['revoke', viewerId]);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      expect(result.stdout).toContain(viewerId);
      expect(result.stdout).toContain('revoked');
      await expectUnauthenticated(gateway, bearer(viewerKey));
      const listed = await allKeys(gateway, bearer(adminKey));
      expect(listed.find((key) => key.id === viewerId)?.revokedAt).not.toBeNull();
    },
    SLOW_TEST_MS,
  );

  it(
    'may revoke the last ADMIN key, which opens the gateway again, and says so',
    async () => {
      const result = await runKeysCli(gateway, ['revoke', adminId]);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      expect(result.stdout).toContain('open to every request again');
      // A gateway seen locked may remember it for a moment: wait for it to see the change.
      await eventually(
        async () => (await execute(gateway.url, ViewerDocument, {}, {})).status === 200,
        POLL_WAIT_MS,
        'the gateway open again',
      );
      expect((await executeOk(gateway.url, ViewerDocument, {}, {})).viewer).toEqual({ role: 'ADMIN', pageIds: null, apiKey: null });
    },
    SLOW_TEST_MS,
  );

  it.each([
    ['no command', []],
    ['an unknown command', ['rotate']],
    ['create without a role', ['create', '--name', 'n']],
    ['create with an unknown role', ['create', '--name', 'n', '--role', 'owner']],
    ['revoke without an id', ['revoke']],
    ['an unknown option', ['create', '--name', 'n', '--role', 'viewer', '--pages', PAGE_A]],
    ['an option without its value', ['create', '--name', 'n', '--role', 'viewer', '--page']],
  ])(
    'exits 1 with the usage text on %s, and stores nothing',
    async (_name, args) => {
      const before = await keyCount(gateway, {});
      const result = await runKeysCli(gateway, args);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('npm run keys -- create --name <name> --role admin|editor|viewer');
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(await keyCount(gateway, {})).toBe(before);
    },
    SLOW_TEST_MS,
  );

  it(
    'exits 1 with a clear message for an unknown page, and stores nothing',
    async () => {
      const before = await keyCount(gateway, {});
      const result = await runKeysCli(gateway, ['create', '--name', 'n', '--role', 'viewer', '--page', PAGE_A, '--page', '5199999999']);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('Unknown page "5199999999"');
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(await keyCount(gateway, {})).toBe(before);
    },
    SLOW_TEST_MS,
  );

  it(
    'exits 1 for an unknown id to revoke',
    async () => {
      const result = await runKeysCli(gateway, ['revoke', randomUUID()]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('Unknown API key');
      expect(result.stderr).not.toMatch(/\n\s+at /);
    },
    SLOW_TEST_MS,
  );
});

describe.each(DATABASE_KINDS)('guessing keys on %s', (kind) => {
  let gateway: TestGateway;
  let key: Created;

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
    key = await createKey(gateway, { name: 'the real one', role: 'ADMIN' }, {});
  });

  it(
    'refuses 2,000 wrong keys with 401, lets none in, and still answers the real key and /healthz',
    async () => {
      const guesses = [
        ...Array.from({ length: 1000 }, badChecksumKey),
        ...Array.from({ length: 1000 }, generateKey),
        typoOf(key.key),
        key.key.slice(0, -1),
        `${key.key}x`,
        key.key.toUpperCase(),
      ];
      expect(guesses.filter((guess) => !isWellFormedKey(guess)).length).toBeGreaterThanOrEqual(1000);
      const statuses = new Map<number, number>();
      const codes = new Set<unknown>();
      const batch = 50;
      for (let start = 0; start < guesses.length; start += batch) {
        const results = await Promise.all(
          guesses.slice(start, start + batch).map((guess) => execute(gateway.url, ViewerDocument, {}, bearer(guess))),
        );
        for (const result of results) {
          statuses.set(result.status, (statuses.get(result.status) ?? 0) + 1);
          codes.add(result.errors?.[0]?.extensions?.code);
          if (result.data) throw new Error(`a guess got in: ${JSON.stringify(result.data)}`);
        }
        if (start % 500 === 0) expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
      }
      expect([...statuses]).toEqual([[401, guesses.length]]);
      expect([...codes]).toEqual(['UNAUTHENTICATED']);

      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
      expect((await executeOk(gateway.url, ViewerDocument, {}, bearer(key.key))).viewer.apiKey?.id).toBe(key.apiKey.id);
      // Nothing was stored by the guesses.
      expect(await keyCount(gateway, bearer(key.key))).toBe(1);
    },
    SLOW_TEST_MS,
  );
});

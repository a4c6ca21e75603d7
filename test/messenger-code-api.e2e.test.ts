import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { CreateApiKeyDocument, RegisterPageDocument, RevokeApiKeyDocument } from './generated/graphql';
import { mMeLink } from '../src/codes/m-me-link';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { countRows, startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { executeOk } from './support/graphql-client';
import { readOneQr } from './support/qr';

reportSkippedDatabases();

const run = promisify(execFile);
const PAGE_TOKEN = 'EAAGm0PX4ZCpsBAKZCvPageToken';
const OTHER_PAGE = '7000000000001';
const OTHER_TOKEN = 'EAAGotherPageToken';

interface GraphError {
  error: { message: string; type: string; code: number; fbtrace_id: string };
}

async function post(
  gateway: TestGateway,
  path: string,
  body: unknown,
  contentType = 'application/json',
): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${gateway.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

/** The Graph API's error shape, key for key and in its order. */
function expectGraphError(answer: { status: number; json: unknown }, code: number): GraphError['error'] {
  expect(answer.status).toBe(code === 190 || code === 100 || code === 4 ? 400 : answer.status);
  const { error } = answer.json as GraphError;
  expect(Object.keys(answer.json as object)).toEqual(['error']);
  expect(Object.keys(error)).toEqual(['message', 'type', 'code', 'fbtrace_id']);
  expect(error).toMatchObject({ type: 'OAuthException', code, fbtrace_id: expect.stringMatching(/^A[\w-]+$/) });
  return error;
}

describe.each(DATABASE_KINDS)('the Messenger Code API, served locally, on %s', (kind) => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway(kind, {
      PAGE_ACCESS_TOKEN: PAGE_TOKEN,
      ENCRYPTION_KEY: randomBytes(32).toString('hex'),
      GENERATE_RATE_LIMIT: '50',
    });
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: OTHER_PAGE, accessToken: OTHER_TOKEN } });
  });

  it("answers the seed's curl, literally, with the URI of a code that scans", async () => {
    // As the Messenger Platform documented it, the host aside.
    const { stdout } = await run('curl', [
      '-X',
      'POST',
      '-H',
      'Content-Type: application/json',
      '-d',
      `{
  "type": "standard",
  "data": {
    "ref":"billboard-ad"
  },
  "image_size": 1000
}`,
      `${gateway.url}/v2.6/me/messenger_codes?access_token=${PAGE_TOKEN}`,
    ]);
    const answer = JSON.parse(stdout) as { uri: string };
    expect(Object.keys(answer)).toEqual(['uri']);
    const image = Buffer.from(await (await fetch(answer.uri)).arrayBuffer());
    expect(await readOneQr(image)).toBe(mMeLink(TEST_PAGE_ID, 'billboard-ad'));
  });

  it("makes a page's token its own page's codes, and takes a form body", async () => {
    const form = new URLSearchParams({
      type: 'standard',
      image_size: '300',
      data: JSON.stringify({ ref: 'flyer' }),
      access_token: OTHER_TOKEN,
    });
    const answer = await post(gateway, '/v4.0/me/messenger_codes', form.toString(), 'application/x-www-form-urlencoded');
    expect(answer.status).toBe(200);
    const image = Buffer.from(await (await fetch((answer.json as { uri: string }).uri)).arrayBuffer());
    expect(await readOneQr(image)).toBe(mMeLink(OTHER_PAGE, 'flyer'));
  });

  /** The first key locks the gateway: one ADMIN key, made while it is open, for every test that makes keys. */
  let adminKey: string | undefined;
  async function admin(): Promise<{ key: string; asAdmin: { authorization: string } }> {
    adminKey ??= (await executeOk(gateway.url, CreateApiKeyDocument, { input: { name: 'admin', role: 'ADMIN' } })).createApiKey.key;
    return { key: adminKey, asAdmin: { authorization: `Bearer ${adminKey}` } };
  }

  it('takes an EDITOR key for its only page, an ADMIN key for the default page, and refuses a VIEWER key', async () => {
    const { key: adminToken, asAdmin } = await admin();
    const editor = (
      await executeOk(gateway.url, CreateApiKeyDocument, { input: { name: 'e', role: 'EDITOR', pageIds: [OTHER_PAGE] } }, asAdmin)
    ).createApiKey.key;
    const viewer = (
      await executeOk(gateway.url, CreateApiKeyDocument, { input: { name: 'v', role: 'VIEWER', pageIds: [OTHER_PAGE] } }, asAdmin)
    ).createApiKey.key;
    const body = { type: 'standard', image_size: 300, data: { ref: 'by-key' } };
    for (const [key, pageId] of [
      [editor, OTHER_PAGE],
      [adminToken, TEST_PAGE_ID],
    ]) {
      const answer = await post(gateway, `/v2.6/me/messenger_codes?access_token=${key}`, body);
      expect(answer.status).toBe(200);
      const image = Buffer.from(await (await fetch((answer.json as { uri: string }).uri)).arrayBuffer());
      expect(await readOneQr(image)).toBe(mMeLink(pageId, 'by-key'));
    }
    const codes = await countRows(gateway, 'code');
    const refused = await post(gateway, `/v2.6/me/messenger_codes?access_token=${viewer}`, { ...body, data: { ref: 'by-viewer' } });
    expect(refused.status).toBe(403);
    expectGraphError(refused, 200);
    expect(await countRows(gateway, 'code')).toBe(codes);
  });

  it("never reaches another page's codes with a key: a revoked key is 190, a key of pages without the default one is 403", async () => {
    const { asAdmin } = await admin();
    const thirdPage = '7000000000003';
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: thirdPage } }, asAdmin);
    const created = (
      await executeOk(gateway.url, CreateApiKeyDocument, { input: { name: 'gone', role: 'EDITOR', pageIds: [OTHER_PAGE] } }, asAdmin)
    ).createApiKey;
    await executeOk(gateway.url, RevokeApiKeyDocument, { id: created.apiKey.id }, asAdmin);
    const twoPages = (
      await executeOk(
        gateway.url,
        CreateApiKeyDocument,
        { input: { name: 'two', role: 'EDITOR', pageIds: [OTHER_PAGE, thirdPage] } },
        asAdmin,
      )
    ).createApiKey.key;
    const codes = await countRows(gateway, 'code');
    const body = { type: 'standard', image_size: 300, data: { ref: 'not-mine' } };

    const revoked = expectGraphError(await post(gateway, `/v2.6/me/messenger_codes?access_token=${created.key}`, body), 190);
    expect(revoked.message).toMatch(/access token/);
    // `me` is the key's only page; a key of two pages means the default page, which it does not see.
    const refused = await post(gateway, `/v2.6/me/messenger_codes?access_token=${twoPages}`, body);
    expect(refused.status).toBe(403);
    expect(expectGraphError(refused, 200).message).toMatch(/several pages/);
    expect(JSON.stringify(refused.json)).not.toContain(TEST_PAGE_ID);
    expect(await countRows(gateway, 'code')).toBe(codes);
  });

  it.each([
    ['no token', ''],
    ['an unknown token', '?access_token=EAAGnotapage'],
    ['an empty token', '?access_token='],
    ['a revoked-looking key', '?access_token=mcg_00000000000000000000000000000000000000'],
  ])('refuses %s with code 190, storing nothing', async (_name, query) => {
    const codes = await countRows(gateway, 'code');
    const error = expectGraphError(
      await post(gateway, `/v2.6/me/messenger_codes${query}`, { type: 'standard', data: { ref: 'nope' } }),
      190,
    );
    expect(error.message).toMatch(/access token/);
    expect(await countRows(gateway, 'code')).toBe(codes);
  });

  it.each([
    ['image_size below 100', { image_size: 5, data: { ref: 'x' } }, /image_size/],
    ['image_size not a number', { image_size: 'large', data: { ref: 'x' } }, /image_size/],
    ['a type other than standard', { type: 'mega', data: { ref: 'x' } }, /type/],
    ['a ref with a space', { data: { ref: 'bill board' } }, /data\[ref\]/],
    ['data that is not an object', { data: 'billboard' }, /data/],
  ])('refuses %s with code 100, storing nothing', async (_name, body, message) => {
    const codes = await countRows(gateway, 'code');
    const error = expectGraphError(await post(gateway, `/v2.6/me/messenger_codes?access_token=${PAGE_TOKEN}`, body), 100);
    expect(error.message).toMatch(/^\(#100\) /);
    expect(error.message).toMatch(message);
    expect(await countRows(gateway, 'code')).toBe(codes);
  });

  it('refuses a body that is not JSON with code 100, and only answers versioned paths', async () => {
    expectGraphError(await post(gateway, `/v2.6/me/messenger_codes?access_token=${PAGE_TOKEN}`, '{"type":'), 100);
    const unversioned = await fetch(`${gateway.url}/latest/me/messenger_codes?access_token=${PAGE_TOKEN}`, { method: 'POST' });
    expect(unversioned.status).toBe(404);
  });
});

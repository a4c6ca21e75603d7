import { signBody } from '../../src/webhook/signature';
import { serializeLikeMeta, webhookBodyOf, type SimulatedScan } from '../../src/webhook/simulated-webhook';

export const TEST_APP_SECRET = 'test-app-secret';

let sequence = 0;
/** A scan event with a unique sender and timestamp unless told otherwise. */
export function scanOf(pageId: string, overrides: Partial<SimulatedScan> = {}): SimulatedScan {
  sequence += 1;
  return {
    pageId,
    senderPsid: `psid-${process.pid}-${sequence}`,
    timestamp: 1_764_000_000_000 + sequence,
    source: 'SHORTLINK',
    ...overrides,
  };
}

export interface WebhookAnswer {
  status: number;
  text: string;
}

/** POSTs raw bytes to /webhook, signed with `secret` unless a signature header is given. */
export async function postRawWebhook(
  baseUrl: string,
  body: string | Buffer,
  options: { secret?: string; signature?: string | null } = {},
): Promise<WebhookAnswer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const signature = options.signature === undefined ? signBody(body, options.secret ?? TEST_APP_SECRET) : options.signature;
  if (signature !== null) headers['x-hub-signature-256'] = signature;
  const response = await fetch(`${baseUrl}/webhook`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : new Uint8Array(body),
  });
  return { status: response.status, text: await response.text() };
}

/** Signs and posts scans exactly as Messenger would (Meta's escaping included). */
export function postScans(baseUrl: string, scans: SimulatedScan[], secret = TEST_APP_SECRET): Promise<WebhookAnswer> {
  return postRawWebhook(baseUrl, serializeLikeMeta(webhookBodyOf(scans)), { secret });
}

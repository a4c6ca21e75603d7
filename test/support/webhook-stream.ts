import { signBody } from '../../src/webhook/signature';
import { serializeLikeMeta, webhookBodyOf, type SimulatedScan } from '../../src/webhook/simulated-webhook';
import { TEST_APP_SECRET } from './webhook';

/** What `POST /webhook` with `Accept: application/json` answers with a 200 (see webhook.route.ts). */
export interface WebhookReceipt {
  result: 'EVENT_RECEIVED';
  stored: number;
  duplicates: number;
  ignored: number;
  malformed: number;
  scans: { id: string; stored: boolean }[];
}

/** What became of one POST: an HTTP answer, or no answer at all (connection refused or cut). */
export type WebhookOutcome = { status: number; text: string; receipt?: WebhookReceipt } | { error: string };

export const answered = (outcome: WebhookOutcome | undefined): outcome is { status: number; text: string; receipt?: WebhookReceipt } =>
  outcome !== undefined && 'status' in outcome;

/** POSTs a body signed with APP_SECRET, asking for the JSON receipt; a failed connection is an outcome, not an error. */
export async function postForReceipt(baseUrl: string, body: string): Promise<WebhookOutcome> {
  try {
    const response = await fetch(`${baseUrl}/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-hub-signature-256': signBody(body, TEST_APP_SECRET) },
      body,
    });
    const text = await response.text();
    const receipt = response.status === 200 ? (JSON.parse(text) as WebhookReceipt) : undefined;
    return { status: response.status, text, ...(receipt ? { receipt } : {}) };
  } catch (error) {
    return { error: String((error as { cause?: unknown }).cause ?? error) };
  }
}

/** One webhook body of the stream and the scans it carries. */
export interface StreamedWebhook {
  body: string;
  scans: SimulatedScan[];
}

/** One webhook body carrying `scans`, as Meta serializes it. */
export function webhookOf(scans: SimulatedScan[]): StreamedWebhook {
  return { body: serializeLikeMeta(webhookBodyOf(scans)), scans };
}

/** Webhook bodies as Meta serializes them, each carrying a few of `scans` (1 to `maxPerBody`, in turn). */
export function webhooksOf(scans: SimulatedScan[], maxPerBody: number): StreamedWebhook[] {
  const webhooks: StreamedWebhook[] = [];
  for (let offset = 0, size = 1; offset < scans.length; offset += size, size = (size % maxPerBody) + 1) {
    webhooks.push(webhookOf(scans.slice(offset, offset + size)));
  }
  return webhooks;
}

/**
 * Posts `webhooks` from `senders` concurrent senders, each taking the next one not sent
 * yet, as Meta's delivery workers do. `onOutcome` sees each outcome as it comes and may
 * stop the stream (answers true): no further webhook is sent, those in flight finish.
 * Resolves with the outcome of each webhook, undefined for those never sent.
 */
export async function stream(
  baseUrl: string,
  webhooks: StreamedWebhook[],
  senders: number,
  onOutcome: (outcome: WebhookOutcome, index: number) => boolean | void = () => undefined,
): Promise<(WebhookOutcome | undefined)[]> {
  const outcomes: (WebhookOutcome | undefined)[] = new Array(webhooks.length).fill(undefined);
  let next = 0;
  let stopped = false;
  const sender = async () => {
    while (!stopped && next < webhooks.length) {
      const index = next++;
      const outcome = await postForReceipt(baseUrl, webhooks[index].body);
      outcomes[index] = outcome;
      if (onOutcome(outcome, index) === true) stopped = true;
    }
  };
  await Promise.all(Array.from({ length: senders }, sender));
  return outcomes;
}

/** POSTs raw bytes signed with APP_SECRET, asking for the JSON receipt (answered 200 only). */
export async function postRawWebhookForReceipt(
  baseUrl: string,
  bytes: Buffer,
): Promise<{ status: number; text: string; receipt?: WebhookReceipt }> {
  const response = await fetch(`${baseUrl}/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', 'x-hub-signature-256': signBody(bytes, TEST_APP_SECRET) },
    body: new Uint8Array(bytes),
  });
  const text = await response.text();
  return { status: response.status, text, ...(response.status === 200 ? { receipt: JSON.parse(text) as WebhookReceipt } : {}) };
}

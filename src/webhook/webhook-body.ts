import type { IncomingMessage } from 'node:http';
import type { BodyBudget } from './body-budget';

/** A webhook body the gateway will not receive, with the status that says why. */
export class WebhookBodyError extends Error {
  constructor(
    readonly statusCode: 408 | 413 | 503,
    message: string,
  ) {
    super(message);
  }
}

export interface WebhookBodyLimits {
  maxBytes: number;
  /** time to receive the whole body, from the first byte of the request handler on */
  receiveTimeoutMs: number;
  budget: BodyBudget;
}

/**
 * Reads a webhook body within its limits: at most `maxBytes` (413, refused from
 * Content-Length before reading when it says so), whole within `receiveTimeoutMs`
 * (408, the socket is closed), and only while the bytes of all bodies held stay
 * within the shared budget (503: Meta retries later). Resolves with the bytes and
 * the number of budget bytes to release once the request is answered.
 */
export function readWebhookBody(request: IncomingMessage, limits: WebhookBodyLimits): Promise<{ body: Buffer; held: number }> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limits.maxBytes) {
    return Promise.reject(new WebhookBodyError(413, 'Webhook body too large.'));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let held = 0;
    let settled = false;
    const fail = (error: WebhookBodyError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      limits.budget.release(held);
      held = 0;
      chunks.length = 0;
      // The rest of a refused body is not kept; a sender too slow to finish is cut off.
      request.removeListener('data', onData);
      if (error.statusCode === 408) request.destroy();
      reject(error);
    };
    // Take what the body says it will need up front, so a refusal comes before its bytes do.
    const take = (bytes: number) => {
      if (!limits.budget.tryTake(bytes)) return false;
      held += bytes;
      return true;
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limits.maxBytes) return fail(new WebhookBodyError(413, 'Webhook body too large.'));
      if (received > held && !take(received - held))
        return fail(new WebhookBodyError(503, 'Too many webhook bytes in flight; retry later.'));
      chunks.push(chunk);
    };
    const timer = setTimeout(() => fail(new WebhookBodyError(408, 'Webhook body not received in time.')), limits.receiveTimeoutMs);
    if (Number.isFinite(declared) && declared > 0 && !take(declared)) {
      fail(new WebhookBodyError(503, 'Too many webhook bytes in flight; retry later.'));
      return;
    }
    request.on('data', onData);
    request.once('end', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ body: Buffer.concat(chunks, received), held });
    });
    request.once('error', () => fail(new WebhookBodyError(408, 'Webhook body not received.')));
    request.once('close', () => {
      if (!request.complete) fail(new WebhookBodyError(408, 'Webhook body not received.'));
    });
  });
}

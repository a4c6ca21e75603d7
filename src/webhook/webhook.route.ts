import { Access } from '../access';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { RelayService } from '../relay/relay.service';
import type { IngestResult, ScanService } from '../scans/scan.service';
import { BodyBudget } from './body-budget';
import { checkSignature } from './signature';
import { readWebhookBody, WebhookBodyError } from './webhook-body';
import { parseWebhookBody, WebhookPayloadError, type ParsedWebhook } from './webhook-payload';

export interface WebhookOptions {
  appSecret: string | undefined;
  verifyToken: string | undefined;
  maxBytes: number;
  /** bytes of webhook bodies held at once, all requests together */
  maxInflightBytes: number;
  /** time to receive one body */
  receiveTimeoutMs: number;
}

type HandshakeQuery = Record<string, string | string[] | undefined>;

/** Why a handshake is refused, for the log; the token itself is never logged. */
function handshakeRefusal(query: HandshakeQuery, verifyToken: string | undefined): string | undefined {
  if (verifyToken === undefined) return 'WEBHOOK_VERIFY_TOKEN is not set';
  if (query['hub.mode'] !== 'subscribe') return 'hub.mode is not "subscribe"';
  if (query['hub.verify_token'] !== verifyToken) return 'hub.verify_token does not match WEBHOOK_VERIFY_TOKEN';
  if (typeof query['hub.challenge'] !== 'string') return 'hub.challenge is missing';
  return undefined;
}

/** Meta ignores the body of the answer; a client asking for JSON (npm run scan) learns what became of each scan. */
function wantsJson(request: FastifyRequest): boolean {
  return request.headers.accept?.includes('application/json') === true;
}

function receipt(parsed: ParsedWebhook, result: IngestResult) {
  return {
    result: 'EVENT_RECEIVED',
    stored: result.stored,
    duplicates: result.duplicates,
    ignored: parsed.ignored,
    malformed: parsed.malformed,
    scans: result.scans,
  };
}

function text(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/plain; charset=utf-8').send(body);
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The Messenger webhook. Thin on purpose: verify, parse, hand the scans to the scan
 * service (with the request's relay deliveries, committed in the same transaction), map
 * the outcome to a status. Meta retries anything but a 200, so 200 is sent only once the
 * scans and deliveries are committed.
 */
export function webhookRoutes(
  scans: ScanService,
  relay: RelayService,
  metrics: GatewayMetrics,
  options: WebhookOptions,
): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const budget = new BodyBudget(options.maxInflightBytes);
    /** Budget bytes each request holds until it is answered. */
    const held = new WeakMap<FastifyRequest, number>();
    const release = (request: FastifyRequest) => {
      budget.release(held.get(request) ?? 0);
      held.delete(request);
    };
    // The signature covers the raw bytes: every body is read as a Buffer, whatever its type,
    // within the limits of readWebhookBody.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (request, payload, done) => {
      readWebhookBody(payload, { maxBytes: options.maxBytes, receiveTimeoutMs: options.receiveTimeoutMs, budget }).then(
        (read) => {
          held.set(request, read.held);
          done(null, read.body);
        },
        (error: Error) => done(error, undefined),
      );
    });

    app.addHook('onResponse', async (request, reply) => {
      release(request);
      if (request.method === 'POST') metrics.webhookAnswered(reply.statusCode);
    });
    app.addHook('onRequestAbort', async (request) => release(request));
    app.setErrorHandler(async (error: Error & { statusCode?: number }, request, reply) => {
      if (error instanceof WebhookBodyError) {
        if (error.statusCode === 503) reply.header('Retry-After', '1');
        if (error.statusCode !== 413) request.log.warn({ reason: error.message, inflightBytes: budget.inUse }, 'webhook body refused');
        return text(reply, error.statusCode, `${error.message}\n`);
      }
      if (error.statusCode === 413) return text(reply, 413, 'Webhook body too large.\n');
      if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
        return text(reply, error.statusCode, 'Bad webhook request.\n');
      }
      request.log.error({ err: error }, 'webhook failed: scans not stored (Meta will redeliver)');
      return text(reply, 500, 'Internal server error.\n');
    });

    app.get('/webhook', async (request, reply) => {
      const query = request.query as HandshakeQuery;
      const refusal = handshakeRefusal(query, options.verifyToken);
      if (refusal !== undefined) {
        request.log.warn({ reason: refusal }, 'webhook handshake refused');
        return text(reply, 403, 'Verification failed.\n');
      }
      return text(reply, 200, query['hub.challenge'] as string);
    });

    app.post('/webhook', async (request, reply) => {
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const signature = options.appSecret
        ? checkSignature(raw, request.headers['x-hub-signature-256'] as string | undefined, options.appSecret)
        : 'no APP_SECRET';
      if (signature !== 'valid') {
        request.log.warn({ reason: signature === 'no APP_SECRET' ? 'APP_SECRET is not set' : `signature ${signature}` }, 'webhook refused');
        return text(reply, 401, 'Invalid or missing X-Hub-Signature-256.\n');
      }
      let parsed: ParsedWebhook;
      try {
        parsed = parseWebhookBody(raw);
      } catch (error) {
        if (!(error instanceof WebhookPayloadError)) throw error;
        request.log.warn({ reason: error.message }, 'webhook refused: signed but not a page webhook');
        return text(reply, 400, `Bad webhook: ${error.message}.\n`);
      }
      if (parsed.malformed > 0) {
        // Meta would redeliver the same items forever: answer 200, and say what was not stored.
        request.log.warn({ malformed: parsed.malformed, reasons: parsed.malformedReasons }, 'webhook scans not stored');
        metrics.webhookItemsRejectedBy(parsed.malformedReasons);
      }
      const relayed = await relay.prepare({
        raw,
        contentType: header(request, 'content-type'),
        signature256: header(request, 'x-hub-signature-256') as string,
        signature1: header(request, 'x-hub-signature'),
        entryPageIds: parsed.entryPageIds,
      });
      const result = await scans.ingest({ requestId: request.id, access: Access.internal() }, parsed.scans, relayed);
      if (relayed) relay.wake();
      request.log.debug(
        { stored: result.stored, duplicates: result.duplicates, ignored: parsed.ignored, malformed: parsed.malformed },
        'webhook stored',
      );
      if (wantsJson(request)) return reply.code(200).send(receipt(parsed, result));
      return text(reply, 200, 'EVENT_RECEIVED');
    });
  };
}

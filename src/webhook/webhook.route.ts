import { randomUUID } from 'node:crypto';
import express, { Router, type ErrorRequestHandler } from 'express';
import { logger } from '../logger';
import type { ScanService } from '../scans/scan.service';
import { isValidSignature } from './signature';
import { parseWebhook, WebhookPayloadError } from './webhook-payload';

export interface WebhookOptions {
  appSecret: string | undefined;
  verifyToken: string | undefined;
  maxBytes: number;
}

/**
 * The Messenger webhook. Thin on purpose: verify, parse, hand the scans to the
 * scan service, map the outcome to a status. Meta retries anything but a 200, so
 * 200 is sent only once the scans are committed.
 */
export function webhookRouter(scans: ScanService, options: WebhookOptions): Router {
  const router = Router();

  router.get('/webhook', (request, response) => {
    const mode = request.query['hub.mode'];
    const token = request.query['hub.verify_token'];
    const challenge = request.query['hub.challenge'];
    if (
      options.verifyToken !== undefined &&
      mode === 'subscribe' &&
      token === options.verifyToken &&
      typeof challenge === 'string'
    ) {
      response.status(200).type('text/plain').send(challenge);
      return;
    }
    response.status(403).type('text/plain').send('Verification failed.\n');
  });

  router.post(
    '/webhook',
    express.raw({ type: () => true, limit: options.maxBytes }),
    async (request, response, next) => {
      const body: unknown = request.body;
      const raw = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
      if (!options.appSecret || !isValidSignature(raw, request.get('x-hub-signature-256'), options.appSecret)) {
        response.status(401).type('text/plain').send('Invalid or missing X-Hub-Signature-256.\n');
        return;
      }
      let parsed;
      try {
        parsed = parseWebhook(JSON.parse(raw.toString('utf8')));
      } catch (error) {
        const reason = error instanceof WebhookPayloadError ? error.message : 'body is not JSON';
        response.status(400).type('text/plain').send(`Bad webhook: ${reason}.\n`);
        return;
      }
      try {
        const requestId = randomUUID();
        const result = await scans.ingest({ requestId }, parsed.scans);
        logger.info('webhook stored', { requestId, ...result, ignored: parsed.ignored, malformed: parsed.malformed });
        response.status(200).type('text/plain').send('EVENT_RECEIVED');
      } catch (error) {
        next(error);
      }
    },
  );

  const tooLarge: ErrorRequestHandler = (error: { type?: string; status?: number }, _request, response, next) => {
    if (error.type === 'entity.too.large') {
      response.status(413).type('text/plain').send('Webhook body too large.\n');
      return;
    }
    next(error);
  };
  router.use('/webhook', tooLarge);
  return router;
}

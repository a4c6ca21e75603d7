/**
 * The requests of each workload, built the way their real senders build them: webhooks
 * signed and serialised exactly as Messenger does (the gateway's own simulator), GraphQL
 * as a JSON POST. Every scan is a distinct event (a new sender), so each one is a real insert.
 */
import 'reflect-metadata';
import { ScanKind } from '../src/scans/scan.entity';
import { signBody } from '../src/webhook/signature';
import { serializeLikeMeta, webhookBodyOf, type SimulatedScan } from '../src/webhook/simulated-webhook';
import { expectGraphQLData, expectStatus200, type AnswerCheck, type HttpRequestSpec } from './http-load';
import type { ScanTarget, Workload } from './protocol';

/** Distinct senders across the whole run of this process (and across processes: the pid). */
let senderSerial = 0;
const senderPrefix = `bench-${process.pid}-${Date.now().toString(36)}`;

function nextScan(pageId: string, ref: string): SimulatedScan {
  senderSerial += 1;
  return {
    pageId,
    ref,
    kind: ScanKind.REFERRAL,
    source: 'SHORTLINK',
    senderPsid: `${senderPrefix}-${senderSerial}`,
    timestamp: Date.now(),
  };
}

export function signedWebhook(path: string, appSecret: string, scans: SimulatedScan[]): HttpRequestSpec {
  const body = serializeLikeMeta(webhookBodyOf(scans));
  return {
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': signBody(body, appSecret) },
    body,
  };
}

/** One new scan of the target's ref, signed, for /webhook. */
export function scanRequest(target: ScanTarget): HttpRequestSpec {
  return signedWebhook('/webhook', target.appSecret, [nextScan(target.pageId, target.ref)]);
}

export function graphqlRequest(query: string, variables: Record<string, unknown> = {}, authorization?: string): HttpRequestSpec {
  return {
    method: 'POST',
    path: '/graphql',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      ...(authorization === undefined ? {} : { authorization }),
    },
    body: JSON.stringify({ query, variables }),
  };
}

const GENERATE_CODE = `mutation Generate($input: GenerateCodeInput!) { generateCode(input: $input) { id ref imageSize } }`;

/** The request factory and the answer check of a workload. */
export function requestsOf(workload: Workload): { next: () => HttpRequestSpec; check: AnswerCheck } {
  switch (workload.kind) {
    case 'single-scan-webhook': {
      let turn = 0;
      return {
        next: () => {
          turn += 1;
          const ref = workload.refs[turn % workload.refs.length];
          return signedWebhook('/webhook', workload.appSecret, [nextScan(workload.pageId, ref)]);
        },
        check: expectStatus200,
      };
    }
    case 'batched-webhook': {
      let turn = 0;
      return {
        next: () => {
          const scans = Array.from({ length: workload.batchSize }, () => {
            turn += 1;
            return nextScan(workload.pageId, workload.refs[turn % workload.refs.length]);
          });
          return signedWebhook('/webhook', workload.appSecret, scans);
        },
        check: expectStatus200,
      };
    }
    case 'graphql': {
      const request = graphqlRequest(workload.query, workload.variables, workload.authorization);
      return { next: () => request, check: expectGraphQLData };
    }
    case 'redirect': {
      const request: HttpRequestSpec = { method: 'GET', path: workload.path, headers: {}, body: '' };
      return {
        next: () => request,
        check: (answer) => (answer.status === 302 ? undefined : `HTTP ${answer.status}: ${answer.body.slice(0, 300)}`),
      };
    }
    case 'generate-code': {
      let serial = 0;
      return {
        next: () => {
          serial += 1;
          return graphqlRequest(GENERATE_CODE, {
            input: { data: { ref: `${workload.refPrefix}-${process.pid}-${serial}` }, imageSize: workload.imageSize },
          });
        },
        check: expectGraphQLData,
      };
    }
  }
}

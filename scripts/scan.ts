import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config';
import { ScanKind } from '../src/scans/scan-kind';
import { signBody } from '../src/webhook/signature';
import { serializeLikeMeta, webhookBodyOf, type SimulatedScan } from '../src/webhook/simulated-webhook';

const usage = `Simulates scans: signs and posts a webhook exactly as Messenger would, to a running gateway.

  npm run scan -- [--ref <ref>] [--first-time] [--page <id>] [--source <source>] [--count <n>]
                  [--sender <psid>] [--url <gateway url>]

  --ref         the code's ref (omit for the page's static code)
  --first-time  a person's first contact: a Get Started postback (kind POSTBACK); default a referral
  --page        page id (default PAGE_ID, or the demo page)
  --source      referral source (default SHORTLINK, what a QR code of an m.me link sends); "none" omits it
  --count       number of scans, by different people, in one batched webhook (default 1)
  --sender      PSID of the person (default a new random one per scan)
  --timestamp   event time in epoch milliseconds (default now); with --sender, repeats an event
  --url         gateway base URL (default PUBLIC_URL or http://localhost:$PORT)

Uses APP_SECRET from the environment, like the gateway.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ref: { type: 'string' },
      'first-time': { type: 'boolean', default: false },
      page: { type: 'string' },
      source: { type: 'string', default: 'SHORTLINK' },
      count: { type: 'string', default: '1' },
      sender: { type: 'string' },
      timestamp: { type: 'string' },
      url: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const config = loadConfig();
  if (!config.appSecret) throw new Error("APP_SECRET is not set: set it to the gateway's APP_SECRET (e.g. APP_SECRET=dev-secret).");
  const count = Number(values.count);
  if (!Number.isInteger(count) || count < 1 || count > 1000) throw new Error('--count must be a whole number from 1 to 1000');

  const now = values.timestamp === undefined ? Date.now() : Number(values.timestamp);
  if (!Number.isInteger(now) || now <= 0) throw new Error('--timestamp must be epoch milliseconds');
  const scans: SimulatedScan[] = Array.from({ length: count }, (_, index) => ({
    pageId: values.page ?? config.defaultPageId,
    ref: values.ref ?? null,
    kind: values['first-time'] ? ScanKind.POSTBACK : ScanKind.REFERRAL,
    source: values.source === 'none' ? null : values.source,
    senderPsid: values.sender ?? `simulated-${randomUUID()}`,
    timestamp: now + index,
  }));
  const body = serializeLikeMeta(webhookBodyOf(scans));
  const url = `${values.url ?? config.publicUrl ?? `http://localhost:${config.port}`}/webhook`;
  const response = await fetch(url, {
    method: 'POST',
    // Meta ignores the body of the answer; asking for JSON gets what became of each scan.
    headers: { 'content-type': 'application/json', accept: 'application/json', 'x-hub-signature-256': signBody(body, config.appSecret) },
    body,
  });
  const answer = await response.text();
  if (!response.ok) {
    process.stdout.write(`POST ${url} → ${response.status} ${answer.trim()}\n`);
    process.exitCode = 1;
    return;
  }
  const receipt = JSON.parse(answer) as WebhookReceipt;
  scans.forEach((scan, index) => {
    const result = receipt.scans[index];
    const what = `${scan.kind === ScanKind.POSTBACK ? 'first-time' : 'returning'} scan of ${scan.ref === null ? 'the static code' : `ref ${scan.ref}`}`;
    process.stdout.write(
      `${what} (page ${scan.pageId}, at ${new Date(scan.timestamp).toISOString()}): ${result?.stored ? 'stored, counted' : 'a duplicate, already counted'}\n`,
    );
  });
  process.stdout.write(`POST ${url} → ${response.status}: ${receipt.stored} stored, ${receipt.duplicates} duplicate(s)\n`);
}

/** The JSON answer of POST /webhook to a client that accepts JSON. */
interface WebhookReceipt {
  stored: number;
  duplicates: number;
  scans: { id: string; stored: boolean }[];
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});

/**
 * The floor of the single-scan webhook row (and of the redirect row: a bare 302 to any
 * GET of /s/…): a bare `node:http` server in a process of
 * its own (as the gateway is) that does only what no webhook can skip: read the body,
 * check its HMAC-SHA256 signature with the same function and secret as the gateway,
 * and answer 200. No framework, no parsing, no database. Forked by the orchestrator;
 * says its port over IPC; exits with its parent.
 */
import { createServer } from 'node:http';
import { checkSignature } from '../src/webhook/signature';

const appSecret = process.argv[2];
if (!appSecret) throw new Error('usage: http-floor-server <app secret>');

const server = createServer((request, response) => {
  // The floor of the redirect row: a 302 and nothing else (no lookup, no counting).
  if (request.method === 'GET' && request.url?.startsWith('/s/')) {
    response.writeHead(302, { location: 'https://m.me/100000000000001?ref=floor', 'cache-control': 'no-store' });
    response.end();
    return;
  }
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const valid =
      checkSignature(Buffer.concat(chunks), request.headers['x-hub-signature-256'] as string | undefined, appSecret) === 'valid';
    response.writeHead(valid ? 200 : 401, { 'content-type': 'text/plain; charset=utf-8' });
    response.end(valid ? 'EVENT_RECEIVED' : 'Invalid or missing X-Hub-Signature-256.\n');
  });
});
// The gateway's keep-alive, so neither closes connections the other keeps.
server.keepAliveTimeout = 72_000;
server.headersTimeout = 73_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error(`unexpected address ${String(address)}`);
  process.send?.({ type: 'listening', port: address.port });
});

process.on('disconnect', () => process.exit(0));

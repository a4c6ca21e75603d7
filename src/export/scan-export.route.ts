import type { Writable } from 'node:stream';
import { stringify } from 'csv-stringify';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Access } from '../access';
import { BadUserInputError, PublicError } from '../errors';
import type { ExportedScan, ScanService } from '../scans/scan.service';

const COLUMNS = ['id', 'pageId', 'ref', 'codeId', 'kind', 'source', 'occurredAt', 'receivedAt'] as const;

/** ISO-8601: a date, or a date-time with seconds optional, fraction optional, and Z or an offset. */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;

/** HTTP status of each public error code a request can meet here. */
const STATUS: Record<string, number> = { BAD_USER_INPUT: 400, UNAUTHENTICATED: 401, FORBIDDEN: 403, NOT_FOUND: 404 };

interface ExportQuery {
  pageId?: string;
  codeId?: string;
  from?: string;
  to?: string;
}

function instant(name: 'from' | 'to', value: string | undefined): Date | undefined {
  if (value === undefined || value === '') return undefined;
  const date = new Date(value);
  if (!ISO_INSTANT.test(value) || Number.isNaN(date.getTime())) {
    throw new BadUserInputError(name, `${name} must be an ISO-8601 date-time, e.g. 2026-12-01T00:00:00Z; got ${JSON.stringify(value)}`);
  }
  return date;
}

function single(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new BadUserInputError(name, `${name} may be given once`);
  return value;
}

/** Resolves when a stream has room again, or is gone (a client that left never drains it). */
function drained(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}

/** An error as /graphql would give it: the same body shape, with the HTTP status of its code. */
function sendError(reply: FastifyReply, error: PublicError): FastifyReply {
  const code = String(error.extensions.code);
  return reply.code(STATUS[code] ?? 400).send({ errors: [{ message: error.message, extensions: error.extensions }] });
}

function row({ scan, codeId }: ExportedScan): (string | null)[] {
  return [scan.id, scan.pageId, scan.ref, codeId, scan.kind, scan.source, scan.occurredAt.toISOString(), scan.receivedAt.toISOString()];
}

/**
 * GET /export/scans.csv?pageId=&codeId=&from=&to=: every scan the key may see, oldest
 * first, as RFC 4180 CSV (csv-stringify: quoting, CRLF, and formula escaping, a `'` before
 * a cell beginning with = + - @ tab or CR, so a spreadsheet never runs a ref). Streamed:
 * rows are read in batches as the client takes them, so memory stays flat.
 */
export function scanExportRoutes(
  scans: ScanService,
  authenticate: (authorization: unknown) => Promise<Access | undefined>,
): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Querystring: ExportQuery }>('/export/scans.csv', async (request, reply) => {
      const access = await authenticate(request.headers.authorization);
      if (!access) {
        reply.header('WWW-Authenticate', 'Bearer');
        return reply.code(401).send({
          errors: [
            { message: 'A valid API key is required: send "Authorization: Bearer <key>".', extensions: { code: 'UNAUTHENTICATED' } },
          ],
        });
      }
      let batches: AsyncIterable<ExportedScan[]>;
      try {
        const query = request.query;
        batches = await scans.export(
          { requestId: request.id, access },
          {
            pageId: single('pageId', query.pageId),
            codeId: single('codeId', query.codeId),
            from: instant('from', single('from', query.from)),
            to: instant('to', single('to', query.to)),
          },
        );
      } catch (error) {
        if (error instanceof PublicError) return sendError(reply, error);
        throw error;
      }

      const csv = stringify({
        header: true,
        columns: [...COLUMNS],
        record_delimiter: 'windows',
        escape_formulas: true,
      });
      // Rows flow as the client reads: a batch is written row by row, and the next one read
      // only once csv-stringify has room (its buffer drained towards the client).
      const pump = async () => {
        for await (const batch of batches) {
          for (const scan of batch) {
            if (csv.destroyed) return;
            if (!csv.write(row(scan))) await drained(csv);
          }
        }
        csv.end();
      };
      pump().catch((error: unknown) => {
        // Headers are gone by now: the response is cut short, and the client sees an incomplete body.
        request.log.error({ err: error }, 'scan export failed midway');
        csv.destroy(error as Error);
      });
      csv.on('close', () => {
        if (!csv.writableFinished) request.log.debug('scan export ended before its last row (the client went away)');
      });
      return reply
        .header('Content-Type', 'text/csv; charset=utf-8')
        .header('Content-Disposition', 'attachment; filename="scans.csv"')
        .header('Cache-Control', 'no-store')
        .send(csv);
    });
  };
}

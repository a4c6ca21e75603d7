import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import type { Gateway } from '../../src/app/gateway';
import type { SimulatedScan } from '../../src/webhook/simulated-webhook';
import { execute } from './graphql-client';
import { postRawWebhook, postScans, scanOf, type WebhookAnswer } from './webhook';

/**
 * Records every PSID a suite sends and every answer it gets, so that the suite can
 * end by proving no PSID came back through the API or was stored in any table.
 */
export class PrivacyWitness {
  readonly psids = new Set<string>();
  readonly answers: string[] = [];

  constructor(private readonly gateway: () => Gateway) {}

  /** A scan whose PSID is remembered. */
  scan = (pageId: string, overrides: Partial<SimulatedScan> = {}): SimulatedScan => {
    const made = scanOf(pageId, overrides);
    this.psids.add(made.senderPsid);
    return made;
  };

  remember = (answer: string): void => {
    this.answers.push(answer);
  };

  /** Runs an operation, remembering the answer; fails on any GraphQL error. */
  query = async <TData, TVariables>(document: TypedDocumentNode<TData, TVariables>, variables?: TVariables): Promise<TData> => {
    const result = await execute(this.gateway().url, document, variables);
    this.remember(JSON.stringify(result));
    if (result.errors?.length || !result.data) throw new Error(`GraphQL errors (HTTP ${result.status}): ${JSON.stringify(result.errors)}`);
    return result.data;
  };

  post = async (scans: SimulatedScan[]): Promise<WebhookAnswer> => {
    const answer = await postScans(this.gateway().url, scans);
    this.remember(answer.text);
    return answer;
  };

  postRaw = async (body: string, options: { secret?: string; signature?: string | null } = {}): Promise<WebhookAnswer> => {
    const answer = await postRawWebhook(this.gateway().url, body, options);
    this.remember(answer.text);
    return answer;
  };

  /** Every remembered PSID that appears in an answer or anywhere in the database: expected none. */
  async leakedPsids(): Promise<string[]> {
    const { db } = this.gateway();
    const tables: { name: string }[] =
      db.kind === 'sqlite'
        ? await db.dataSource.query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
        : await db.dataSource.query(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`);
    expect(tables.map((table) => table.name)).toEqual(expect.arrayContaining(['scan', 'ref_counter', 'code']));
    let dump = '';
    for (const { name } of tables) dump += JSON.stringify(await db.dataSource.query(`SELECT * FROM "${name}"`));
    expect(dump.length).toBeGreaterThan(10_000);
    const everything = `${dump}\n${this.answers.join('\n')}`;
    return [...this.psids].filter((psid) => everything.includes(psid));
  }
}

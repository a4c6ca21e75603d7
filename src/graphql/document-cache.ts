import {
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import { parseWithinLimits } from './operation-limits';
import { TextKeyedCache } from './text-keyed-cache';

/**
 * Most distinct documents kept, and the most characters of text they may hold together:
 * clients send a handful, an attacker many. A document's syntax tree takes about 270 bytes
 * per token (at most 1,000 tokens, see OPERATION_LIMITS), so 100 documents hold at most ~27 MB.
 */
const MAX_DOCUMENTS = 100;
const MAX_DOCUMENT_CHARS = 1024 * 1024;

/**
 * Parsed and validated documents by their text, least recently used dropped first.
 * Apollo Server caches documents for HTTP; this does the same for graphql-ws, where
 * a wall of dashboards reconnecting after a deploy sends the same subscription thousands of times.
 * The operation limits are checked first (parseWithinLimits), graphql's own rules after.
 */
export class DocumentCache {
  private readonly documents = new TextKeyedCache<DocumentNode | readonly GraphQLError[]>({
    maxEntries: MAX_DOCUMENTS,
    maxChars: MAX_DOCUMENT_CHARS,
  });

  private readonly rules: readonly ValidationRule[];

  /** Without introspection, __schema and __type are refused here as Apollo refuses them over HTTP. */
  constructor(
    private readonly schema: GraphQLSchema,
    options: { introspection: boolean },
  ) {
    this.rules = options.introspection ? specifiedRules : [...specifiedRules, NoSchemaIntrospectionCustomRule];
  }

  /** Documents kept. */
  get size(): number {
    return this.documents.size;
  }

  /** Characters of the texts kept. */
  get chars(): number {
    return this.documents.chars;
  }

  /** The document, or the parse/limit/validation errors of the text. */
  get(query: string): DocumentNode | readonly GraphQLError[] {
    const cached = this.documents.get(query);
    if (cached !== undefined) return cached;
    const result = this.parseAndValidate(query);
    this.documents.set(query, result);
    return result;
  }

  private parseAndValidate(query: string): DocumentNode | readonly GraphQLError[] {
    const document = parseWithinLimits(this.schema, query);
    if (isErrors(document)) return document;
    const errors = validate(this.schema, document, this.rules);
    return errors.length > 0 ? errors.map((error) => withCode(error, 'GRAPHQL_VALIDATION_FAILED')) : document;
  }
}

/** The codes Apollo Server gives the same errors over HTTP; the nodes are kept (input-error-fields reads them). */
function withCode(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    originalError: error.originalError,
    extensions: { ...error.extensions, code },
  });
}

function isErrors(value: DocumentNode | readonly GraphQLError[]): value is readonly GraphQLError[] {
  return Array.isArray(value);
}

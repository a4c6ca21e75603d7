import {
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';

/** Most distinct operations kept parsed: clients send a handful, an attacker many. */
const MAX_DOCUMENTS = 1000;

/**
 * Parsed and validated documents by their text, least recently used dropped first.
 * Apollo Server caches documents for HTTP; this does the same for graphql-ws, where
 * a wall of dashboards reconnecting after a deploy sends the same subscription thousands of times.
 */
export class DocumentCache {
  private readonly documents = new Map<string, DocumentNode | readonly GraphQLError[]>();

  private readonly rules: readonly ValidationRule[];

  /** Without introspection, __schema and __type are refused here as Apollo refuses them over HTTP. */
  constructor(
    private readonly schema: GraphQLSchema,
    options: { introspection: boolean },
  ) {
    this.rules = options.introspection ? specifiedRules : [...specifiedRules, NoSchemaIntrospectionCustomRule];
  }

  /** The document, or the parse/validation errors of the text. */
  get(query: string): DocumentNode | readonly GraphQLError[] {
    const cached = this.documents.get(query);
    if (cached !== undefined) {
      this.documents.delete(query);
      this.documents.set(query, cached);
      return cached;
    }
    const result = this.parseAndValidate(query);
    this.documents.set(query, result);
    if (this.documents.size > MAX_DOCUMENTS) this.documents.delete(this.documents.keys().next().value as string);
    return result;
  }

  private parseAndValidate(query: string): DocumentNode | readonly GraphQLError[] {
    let document: DocumentNode;
    try {
      document = parse(query);
    } catch (error) {
      return [withCode(error instanceof GraphQLError ? error : new GraphQLError(String(error)), 'GRAPHQL_PARSE_FAILED')];
    }
    const errors = validate(this.schema, document, this.rules);
    return errors.length > 0 ? errors.map((error) => withCode(error, 'GRAPHQL_VALIDATION_FAILED')) : document;
  }
}

/** The codes Apollo Server gives the same errors over HTTP. */
function withCode(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    originalError: error.originalError,
    extensions: { ...error.extensions, code },
  });
}

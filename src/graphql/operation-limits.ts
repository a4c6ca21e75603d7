import { ApolloArmor } from '@escape.tech/graphql-armor';
import {
  GraphQLError,
  parse,
  validate,
  type DocumentNode,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { MAX_PAGE_SIZE } from '../pagination/cursor';
import { TextKeyedCache } from './text-keyed-cache';
import { queryCostRule } from './query-cost';

/**
 * What one GraphQL operation may ask for, over HTTP and WebSocket alike (README, "Limits").
 * Each is several times what a real client of this schema sends; what they refuse is an
 * attack or a mistake.
 */
export const OPERATION_LIMITS = Object.freeze({
  /**
   * Tokens of the document (names, punctuators, values; comments are free), counted while
   * parsing: a 1 MB document stops at the first token past this. GraphiQL's introspection
   * query has 184; the largest query this schema makes sense for, about 150. Bounding the
   * tokens also bounds graphql's own validation, part of which is quadratic in the fields.
   */
  maxTokens: 1_000,
  /**
   * Nesting of fields; fragments add none of their own, introspection (`__schema`) is
   * exempt. A dashboard listing codes, their scans and each scan's code
   * (`codes → edges → node → scans → edges → node → code → id`) is 8.
   */
  maxDepth: 10,
  /** Aliased fields (`__typename` aliases are free). What they could multiply is bounded by the cost. */
  maxAliases: 100,
  /** Directives (`@include`, `@skip`, …) in the operation. */
  maxDirectives: 50,
  /**
   * See query-cost.ts: every field counts 1, and `first` multiplies its selection.
   * `codes(first: 100)` with each code's `scans(first: 100)` and a dozen fields costs about
   * 131,000 and passes; one more level of `scans(first: 100)` costs millions.
   */
  maxCost: 200_000,
  /** What an unpaged list counts for in the cost: introspection's types, fields, arguments. */
  unpagedListSize: 10,
});

/** The code of every limit refusal: Apollo Server's code for an operation refused before execution. */
const LIMIT_CODE = 'GRAPHQL_VALIDATION_FAILED';

/** Armor reports through a callback: this one reports a clean error, naming the limit. */
function reportLimit(limit: string) {
  return (context: ValidationContext | null, error: GraphQLError) => {
    context?.reportError(new GraphQLError(error.message.replace(/^Syntax Error: /, ''), { extensions: { code: LIMIT_CODE, limit } }));
  };
}

/**
 * The limits other than tokens as validation rules: GraphQL Armor's depth, alias and
 * directive rules, and our cost rule (Armor's cost limit multiplies only by a literal
 * `first`, not by a variable's or the default's).
 */
export function operationLimitRules(): readonly ValidationRule[] {
  const armor = new ApolloArmor({
    // Tokens are bounded by graphql's own parser below; the cost is ours; suggestions are
    // removed from the formatted errors (hidingSuggestions) on both transports.
    maxTokens: { enabled: false },
    costLimit: { enabled: false },
    blockFieldSuggestion: { enabled: false },
    maxDepth: {
      n: OPERATION_LIMITS.maxDepth,
      ignoreIntrospection: true,
      flattenFragments: true,
      propagateOnRejection: false,
      onReject: [reportLimit('depth')],
    },
    maxAliases: { n: OPERATION_LIMITS.maxAliases, propagateOnRejection: false, onReject: [reportLimit('aliases')] },
    maxDirectives: { n: OPERATION_LIMITS.maxDirectives, propagateOnRejection: false, onReject: [reportLimit('directives')] },
  });
  return [
    ...armor.protect().validationRules,
    queryCostRule({
      maxCost: OPERATION_LIMITS.maxCost,
      maxPageSize: MAX_PAGE_SIZE,
      unpagedListSize: OPERATION_LIMITS.unpagedListSize,
    }),
  ];
}

const LIMIT_RULES = operationLimitRules();

/**
 * Parses `query` within the token limit, then checks the other limits alone: the document,
 * or the errors that refuse it (codes as Apollo Server gives them). This runs before graphql's
 * own validation, which must not see a refused document: its rules run together in one pass,
 * and one of them (MaxIntrospectionDepthRule, graphql 16) walks fragments without memory,
 * 2^n steps for n fragments each spreading the previous twice inside `__schema`.
 */
export function parseWithinLimits(schema: GraphQLSchema, query: string): DocumentNode | readonly GraphQLError[] {
  let document: DocumentNode;
  try {
    document = parse(query, { maxTokens: OPERATION_LIMITS.maxTokens });
  } catch (error) {
    if (!(error instanceof GraphQLError)) throw error;
    if (/contains more th\w+ \d+ tokens/.test(error.message)) {
      return [
        new GraphQLError(
          `Operation too large: more than ${OPERATION_LIMITS.maxTokens.toLocaleString('en-US')} tokens (names, punctuators, values). Parsing aborted.`,
          { source: error.source, positions: error.positions, extensions: { code: LIMIT_CODE, limit: 'tokens' } },
        ),
      ];
    }
    return [withCode(error, 'GRAPHQL_PARSE_FAILED')];
  }
  const errors = validate(schema, document, LIMIT_RULES);
  return errors.length > 0 ? errors.map((error) => withCode(error, LIMIT_CODE)) : document;
}

/**
 * The same error with `extensions.code`, located by position rather than by the nodes, so a
 * cached refusal holds the text of the document but not its syntax tree.
 */
function withCode(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, {
    source: error.source,
    positions: error.positions,
    originalError: error.originalError,
    extensions: { ...error.extensions, code },
  });
}

/** Distinct documents whose verdict is kept, and the most text they may hold together. */
const VERDICTS_KEPT = 1_000;
const VERDICT_TEXT_CHARS = 1024 * 1024;

/**
 * The limits as a gate in front of Apollo Server (GraphQL over HTTP): the refusal of a query
 * text, or undefined when it is within the limits. Verdicts are kept by text, so a client
 * repeating its operations parses each once here (Apollo keeps its own parsed documents).
 */
export class OperationLimitsGate {
  private readonly verdicts = new TextKeyedCache<readonly GraphQLError[] | null>({
    maxEntries: VERDICTS_KEPT,
    maxChars: VERDICT_TEXT_CHARS,
  });

  constructor(private readonly schema: GraphQLSchema) {}

  refusal(query: string): readonly GraphQLError[] | undefined {
    let verdict = this.verdicts.get(query);
    if (verdict === undefined) {
      const checked = parseWithinLimits(this.schema, query);
      verdict = Array.isArray(checked) ? (checked as readonly GraphQLError[]) : null;
      this.verdicts.set(query, verdict);
    }
    return verdict ?? undefined;
  }
}

/** graphql's "Did you mean …?" hints: from validation, and from variable and argument values. */
const SUGGESTION = / ?Did you mean [^?]*\?/g;

/**
 * A formatError that removes graphql's suggestions ("Did you mean `code` or `codes`?"):
 * with introspection off, they would list the schema one guess at a time.
 */
export function hidingSuggestions<E>(
  formatError: (formatted: GraphQLFormattedError, error: E) => GraphQLFormattedError,
): (formatted: GraphQLFormattedError, error: E) => GraphQLFormattedError {
  return (formatted, error) => {
    const result = formatError(formatted, error);
    const message = result.message.replace(SUGGESTION, '');
    return message === result.message ? result : { ...result, message };
  };
}

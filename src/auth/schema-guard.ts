import {
  defaultFieldResolver,
  getNamedType,
  getNullableType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLFieldResolver,
  type GraphQLInputType,
  type GraphQLOutputType,
  type GraphQLSchema,
} from 'graphql';
import type { Access, Capability } from '../access';
import { ForbiddenError } from '../errors';

/** What a field needs: a capability of the key's role, or only a key at all (`authenticated`). */
export type FieldRule = Capability | 'authenticated';

/** A field coordinate, `Type.field`, as in the GraphQL spec's schema coordinates. */
export type FieldCoordinate = `${string}.${string}`;

export interface SchemaGuardOptions {
  /**
   * What each field needs. Every field of Query, Mutation and Subscription must have a
   * rule: a root field without one makes guardSchema throw, so a new operation cannot be
   * served before someone decides who may call it. Other fields may have one (a field
   * only ADMIN may read).
   */
  rules: Partial<Record<FieldCoordinate, FieldRule>>;
  /** The page each page-owned type belongs to: `{ Code: (code) => code.pageId, … }`. */
  owners: Record<string, (value: never) => string>;
  /** The request's access, from the GraphQL context. */
  accessOf(context: unknown): Access;
  /** Told when a resolver returned something outside the key's pages (a bug: it was withheld). */
  onViolation(context: unknown, coordinate: FieldCoordinate): void;
}

/** Argument and input field names that name pages: checked wherever they appear. */
const PAGE_ID_NAMES = new Set(['pageId', 'pageIds']);

const ROLES_WITH: Record<Capability, string> = {
  read: 'VIEWER, EDITOR or ADMIN',
  generate: 'EDITOR or ADMIN',
  administer: 'ADMIN',
};

/** A result withheld because it lies outside the key's pages; what a client sees is masked as internal. */
export class ScopeViolation extends Error {
  constructor(readonly coordinate: FieldCoordinate) {
    super(`${coordinate} resolved a value outside the pages of the request's key; it was withheld`);
  }
}

type Check = (value: unknown, access: Access, context: unknown) => unknown;

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** Whether an input type (through lists and input objects) has a field that names pages. */
function namesPages(type: GraphQLInputType, seen = new Set<string>()): boolean {
  const named = getNamedType(type);
  if (!isInputObjectType(named) || seen.has(named.name)) return false;
  seen.add(named.name);
  return Object.values(named.getFields()).some((field) => PAGE_ID_NAMES.has(field.name) || namesPages(field.type, seen));
}

/**
 * FORBIDDEN for the first page id in the arguments that the key may not use. Paths are
 * those of error fields: inside an `input` argument without its prefix (`pageIds[3]`).
 */
function checkPageArguments(access: Access, value: unknown, path: string): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => checkPageArguments(access, item, `${path}[${index}]`));
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  for (const [name, field] of Object.entries(value as Record<string, unknown>)) {
    const fieldPath = path === '' ? name : `${path}.${name}`;
    if (PAGE_ID_NAMES.has(name)) {
      const ids = Array.isArray(field) ? field : [field];
      ids.forEach((id, index) => {
        if (typeof id === 'string') access.requirePage(id, Array.isArray(field) ? `${fieldPath}[${index}]` : fieldPath);
      });
    } else {
      checkPageArguments(access, field, fieldPath);
    }
  }
}

function pageArgumentsCheck(args: readonly GraphQLArgument[]): ((access: Access, values: Record<string, unknown>) => void) | undefined {
  const relevant = args.filter((arg) => PAGE_ID_NAMES.has(arg.name) || namesPages(arg.type));
  if (relevant.length === 0) return undefined;
  return (access, values) => {
    for (const arg of relevant) {
      const value = values[arg.name];
      if (PAGE_ID_NAMES.has(arg.name)) checkPageArguments(access, { [arg.name]: value }, '');
      else checkPageArguments(access, value, arg.name === 'input' ? '' : arg.name);
    }
  };
}

/**
 * The check of a field's result against the key's pages, when its type holds page-owned
 * values: the type itself, a list of it, or a connection (`edges[].node`) of it. A value
 * outside is withheld: null where the field is nullable, left out of a list, else an error.
 */
function resultCheck(type: GraphQLOutputType, coordinate: FieldCoordinate, options: SchemaGuardOptions): Check | undefined {
  const nullable = !isNonNullType(type);
  const inner = getNullableType(type);
  const named = getNamedType(type);
  if (!isObjectType(named)) return undefined;

  const withheld = (context: unknown) => {
    options.onViolation(context, coordinate);
    return new ScopeViolation(coordinate);
  };

  const owner = options.owners[named.name] as ((value: unknown) => string) | undefined;
  if (owner) {
    const visible = (value: unknown, access: Access) => value == null || access.sees(owner(value));
    if (isListType(inner)) {
      return (value, access, context) => {
        if (!Array.isArray(value) || value.every((item) => visible(item, access))) return value;
        withheld(context);
        return value.filter((item) => visible(item, access));
      };
    }
    return (value, access, context) => {
      if (visible(value, access)) return value;
      const error = withheld(context);
      if (nullable) return null;
      throw error;
    };
  }

  // A connection: edges { node } of a page-owned type.
  const edges = named.getFields().edges;
  const edgeType = edges && getNamedType(edges.type);
  const node = edgeType && isObjectType(edgeType) ? edgeType.getFields().node : undefined;
  const nodeOwner = node && (options.owners[getNamedType(node.type).name] as ((value: unknown) => string) | undefined);
  if (!nodeOwner) return undefined;
  return (value, access, context) => {
    const connection = value as { edges?: { node: unknown }[] } | null;
    if (!connection?.edges || connection.edges.every((edge) => access.sees(nodeOwner(edge.node)))) return value;
    withheld(context);
    return Object.assign(Object.create(Object.getPrototypeOf(connection) as object) as object, connection, {
      edges: connection.edges.filter((edge) => access.sees(nodeOwner(edge.node))),
    });
  };
}

function enforceRule(access: Access, rule: FieldRule, field: string): void {
  if (rule === 'authenticated' || access.can(rule)) return;
  throw new ForbiddenError(`${field} needs a key with the role ${ROLES_WITH[rule]}; this key is ${access.role}.`);
}

/**
 * Makes the schema enforce who may do what, in one place for every request, over HTTP
 * and WebSocket alike: each root field's rule (role), every page id in any argument
 * (FORBIDDEN outside the key's pages), and every page-owned value any field returns
 * (withheld outside them). Services narrow their queries to the key's pages, so lists
 * and totals are right; this guard makes a forgotten narrowing a withheld value and an
 * error in the log, never a leak. Wraps the resolvers in place and returns the schema.
 */
export function guardSchema(schema: GraphQLSchema, options: SchemaGuardOptions): GraphQLSchema {
  const rootTypes = new Set([schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].filter(Boolean));
  const unruled: string[] = [];
  const unknownRules = new Set(Object.keys(options.rules));

  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    const isRoot = rootTypes.has(type);
    for (const field of Object.values(type.getFields()) as GraphQLField<unknown, unknown>[]) {
      const coordinate: FieldCoordinate = `${type.name}.${field.name}`;
      const rule = options.rules[coordinate];
      unknownRules.delete(coordinate);
      if (isRoot && rule === undefined) unruled.push(coordinate);
      const checkArguments = pageArgumentsCheck(field.args);
      const checkResult = resultCheck(field.type, coordinate, options);
      const isSubscription = type === schema.getSubscriptionType();

      // Before anything runs: on a subscription, in `subscribe`, once; elsewhere in `resolve`.
      const admit = (args: Record<string, unknown>, context: unknown): Access => {
        const access = options.accessOf(context);
        if (rule !== undefined) enforceRule(access, rule, field.name);
        if (checkArguments && access.scoped) checkArguments(access, args);
        return access;
      };

      if (isSubscription && field.subscribe) {
        const subscribe = field.subscribe;
        field.subscribe = (source, args, context, info) => {
          admit(args as Record<string, unknown>, context);
          return subscribe(source, args, context, info);
        };
      }
      if (rule === undefined && !checkArguments && !checkResult) continue;
      const resolve: GraphQLFieldResolver<unknown, unknown> = field.resolve ?? defaultFieldResolver;
      field.resolve = (source, args, context, info) => {
        const access = isSubscription ? options.accessOf(context) : admit(args as Record<string, unknown>, context);
        const result = resolve(source, args, context, info);
        if (!checkResult || !access.scoped) return result;
        return isPromiseLike(result)
          ? Promise.resolve(result).then((value) => checkResult(value, access, context))
          : checkResult(result, access, context);
      };
    }
  }
  if (unruled.length > 0) {
    throw new Error(`Every root field needs a rule of who may call it; none for: ${unruled.join(', ')}`);
  }
  if (unknownRules.size > 0) {
    throw new Error(`Rules for fields the schema does not have: ${[...unknownRules].join(', ')}`);
  }
  return schema;
}

import {
  buildSchema,
  graphql,
  isObjectType,
  parse,
  subscribe,
  type ExecutionResult,
  type GraphQLFieldResolver,
  type GraphQLSchema,
} from 'graphql';
import { Access, Role } from '../../src/access';
import { subscribeSharingResults } from '../../src/graphql/shared-subscription-execution';
import { guardSchema, type FieldCoordinate, type FieldRule, type SchemaGuardOptions } from '../../src/auth/schema-guard';

const A = '111';
const B = '222';

const SDL = /* GraphQL */ `
  type Thing {
    id: ID!
    pageId: ID!
    "nullable single page-owned value"
    related: Thing
    "non-null single page-owned value"
    strictRelated: Thing!
    "list of page-owned values"
    related_list: [Thing!]!
    "a connection of page-owned values"
    relatedConnection: ThingConnection!
    secret: String
  }
  type ThingEdge {
    cursor: String!
    node: Thing!
  }
  type ThingConnection {
    edges: [ThingEdge!]!
    totalCount: Int!
  }
  type Label {
    text: String!
  }
  input NestedInput {
    pageId: ID
    deeper: [NestedInput!]
  }
  input MakeInput {
    name: String
    pageId: ID
    pageIds: [ID!]
    nested: NestedInput
  }
  type Query {
    thing(id: ID!): Thing
    strictThing(id: ID!): Thing!
    things: [Thing!]!
    connection(pageId: ID): ThingConnection!
    hello: String!
    label: Label
    me: String!
  }
  type Mutation {
    make(input: MakeInput!): Boolean!
    makeWith(options: MakeInput, pageIds: [ID!]): Boolean!
    administer: Boolean!
  }
  type Subscription {
    watched(pageId: ID): Thing!
  }
`;

const RULES: Partial<Record<FieldCoordinate, FieldRule>> = {
  'Query.thing': 'read',
  'Query.strictThing': 'read',
  'Query.things': 'read',
  'Query.connection': 'read',
  'Query.hello': 'read',
  'Query.label': 'read',
  'Query.me': 'authenticated',
  'Mutation.make': 'generate',
  'Mutation.makeWith': 'generate',
  'Mutation.administer': 'administer',
  'Subscription.watched': 'read',
  // A field that is not a root field, held to more than reading the object it is on.
  'Thing.secret': 'administer',
};

interface Thing {
  id: string;
  pageId: string;
}

/** A connection as services return it: a class whose totalCount is a method on its prototype. */
class ThingConnection {
  constructor(
    readonly edges: { cursor: string; node: Thing }[],
    private readonly count: number,
  ) {}

  totalCount(): number {
    return this.count;
  }
}

const thing = (id: string, pageId: string): Thing => ({ id, pageId });
const THINGS = [thing('a1', A), thing('b1', B), thing('a2', A), thing('b2', B)];

interface Context {
  access: Access;
  violations: FieldCoordinate[];
}

/** What resolvers were called: a refused operation must not reach its resolver. */
let called: string[];

/**
 * Resolvers that "forget" to narrow: every one returns things of both pages, as a
 * resolver with a missing WHERE would.
 */
const RESOLVERS: Record<string, Record<string, GraphQLFieldResolver<unknown, Context>>> = {
  Query: {
    thing: (_source, args) => THINGS.find((item) => item.id === (args as { id: string }).id) ?? null,
    strictThing: (_source, args) => THINGS.find((item) => item.id === (args as { id: string }).id),
    things: () => THINGS,
    connection: async () =>
      new ThingConnection(
        THINGS.map((node) => ({ cursor: `c-${node.id}`, node })),
        4,
      ),
    hello: () => 'hello',
    label: () => ({ text: `label of ${B}` }),
    me: (_source, _args, context) => context.access.role,
  },
  Thing: {
    related: (source) => thing(`${(source as Thing).id}-related`, B),
    strictRelated: async (source) => thing(`${(source as Thing).id}-strict`, B),
    related_list: (source) => [thing(`${(source as Thing).id}-x`, A), thing(`${(source as Thing).id}-y`, B)],
    relatedConnection: () => new ThingConnection([{ cursor: 'c1', node: thing('n1', B) }], 7),
    secret: () => 'the secret',
  },
  Mutation: {
    make: (_source, args) => {
      called.push(`make ${JSON.stringify(args)}`);
      return true;
    },
    makeWith: (_source, args) => {
      called.push(`makeWith ${JSON.stringify(args)}`);
      return true;
    },
    administer: () => {
      called.push('administer');
      return true;
    },
  },
};

/** A fresh schema with the resolvers attached (guardSchema wraps in place, so one per test). */
function makeSchema(sdl = SDL, withSubscription = true): GraphQLSchema {
  const schema = buildSchema(sdl);
  for (const [typeName, fields] of Object.entries(RESOLVERS)) {
    const type = schema.getType(typeName);
    if (!isObjectType(type)) continue;
    for (const [fieldName, resolve] of Object.entries(fields)) {
      const field = type.getFields()[fieldName];
      if (field) field.resolve = resolve as GraphQLFieldResolver<unknown, unknown>;
    }
  }
  const watched = schema.getSubscriptionType()?.getFields().watched;
  if (watched && withSubscription) {
    watched.subscribe = async function* () {
      called.push('subscribe');
      yield { watched: thing('live-a', A) };
      yield { watched: thing('live-b', B) };
      yield { watched: thing('live-a2', A) };
    };
    watched.resolve = (event) => (event as { watched: Thing }).watched;
  }
  return schema;
}

function optionsWith(rules: Partial<Record<FieldCoordinate, FieldRule>> = RULES): SchemaGuardOptions {
  return {
    rules,
    owners: { Thing: (value: Thing) => value.pageId },
    accessOf: (context) => (context as Context).access,
    onViolation: (context, coordinate) => (context as Context).violations.push(coordinate),
  };
}

const VIEWER_A = () => Access.apiKey('viewer-a', Role.VIEWER, [A]);
const EDITOR_A = () => Access.apiKey('editor-a', Role.EDITOR, [A]);
const EDITOR_AB = () => Access.apiKey('editor-ab', Role.EDITOR, [A, B]);

async function run(access: Access, source: string, variableValues?: Record<string, unknown>) {
  const context: Context = { access, violations: [] };
  const schema = guardSchema(makeSchema(), optionsWith());
  const result = await graphql({ schema, source, contextValue: context, variableValues });
  return { result, violations: context.violations };
}

const errorsOf = (result: ExecutionResult) =>
  (result.errors ?? []).map((error) => ({ message: error.message, path: error.path, extensions: error.extensions }));

beforeEach(() => {
  called = [];
});

describe('guardSchema: building', () => {
  it('refuses a schema with a root field that has no rule, naming it', () => {
    const rules = { ...RULES };
    delete rules['Query.hello'];
    delete rules['Subscription.watched'];
    expect(() => guardSchema(makeSchema(), optionsWith(rules))).toThrow(/Query\.hello/);
    expect(() => guardSchema(makeSchema(), optionsWith(rules))).toThrow(/Subscription\.watched/);
    expect(() => guardSchema(makeSchema(), optionsWith(rules))).not.toThrow(/Query\.thing\b/);
  });

  it('refuses a mutation without a rule, naming it', () => {
    const rules = { ...RULES };
    delete rules['Mutation.make'];
    expect(() => guardSchema(makeSchema(), optionsWith(rules))).toThrow(/Mutation\.make\b/);
  });

  it('does not require rules on fields that are not root fields', () => {
    const rules = { ...RULES };
    delete rules['Thing.secret'];
    expect(() => guardSchema(makeSchema(), optionsWith(rules))).not.toThrow();
  });

  it.each(['Query.nope', 'Thing.nothing', 'Nowhere.thing'])('refuses a rule for a field the schema does not have: %s', (coordinate) => {
    const rules = { ...RULES, [coordinate]: 'read' } as Partial<Record<FieldCoordinate, FieldRule>>;
    expect(() => guardSchema(makeSchema(), optionsWith(rules))).toThrow(coordinate);
  });

  it('returns the schema it was given, guarded in place', () => {
    const schema = makeSchema();
    expect(guardSchema(schema, optionsWith())).toBe(schema);
  });
});

describe('guardSchema: roles', () => {
  it.each([
    [Role.VIEWER, 'make', 'EDITOR or ADMIN'],
    [Role.VIEWER, 'administer', 'ADMIN'],
    [Role.EDITOR, 'administer', 'ADMIN'],
  ])('refuses a %s key %s (a role above it) with FORBIDDEN, and never calls the resolver', async (role, field, roles) => {
    const access = Access.apiKey('unscoped', role, null);
    const source = field === 'make' ? 'mutation { make(input: { name: "x" }) }' : 'mutation { administer }';
    const { result } = await run(access, source);
    expect(result.data).toBeNull();
    expect(errorsOf(result)).toEqual([
      { message: `${field} needs a key with the role ${roles}; this key is ${role}.`, path: [field], extensions: { code: 'FORBIDDEN' } },
    ]);
    expect(called).toEqual([]);
  });

  it.each([
    [Role.EDITOR, 'mutation { make(input: { name: "x" }) }', 'make'],
    [Role.ADMIN, 'mutation { administer }', 'administer'],
  ])('lets a %s key call what its role may', async (role, source, field) => {
    const { result } = await run(Access.apiKey('k', role, null), source);
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({ [field]: true });
  });

  it('holds a non-root field with a rule to it: Thing.secret needs ADMIN', async () => {
    const viewer = await run(Access.apiKey('v', Role.VIEWER, null), '{ thing(id: "a1") { id secret } }');
    expect(viewer.result.data).toEqual({ thing: { id: 'a1', secret: null } });
    expect(errorsOf(viewer.result)).toEqual([expect.objectContaining({ path: ['thing', 'secret'], extensions: { code: 'FORBIDDEN' } })]);
    const admin = await run(Access.apiKey('adm', Role.ADMIN, null), '{ thing(id: "a1") { id secret } }');
    expect(admin.result.data).toEqual({ thing: { id: 'a1', secret: 'the secret' } });
  });

  it('lets any key call an `authenticated` field', async () => {
    const { result } = await run(VIEWER_A(), '{ me }');
    expect(result).toEqual({ data: { me: 'VIEWER' } });
  });
});

describe('guardSchema: page ids in arguments', () => {
  it.each([
    ['a top-level argument', '{ connection(pageId: "222") { totalCount } }', 'connection', 'pageId'],
    ['an input field', 'mutation { make(input: { pageId: "222" }) }', 'make', 'pageId'],
    ['a list in an input', 'mutation { make(input: { pageIds: ["111", "222"] }) }', 'make', 'pageIds[1]'],
    ['a nested input', 'mutation { make(input: { nested: { pageId: "222" } }) }', 'make', 'nested.pageId'],
    [
      'a list of nested inputs',
      'mutation { make(input: { nested: { pageId: "111", deeper: [{ pageId: "111" }, { deeper: [{ pageId: "222" }] }] } }) }',
      'make',
      'nested.deeper[1].deeper[0].pageId',
    ],
    ['an input argument not called input', 'mutation { makeWith(options: { pageId: "222" }) }', 'makeWith', 'options.pageId'],
    ['a top-level list argument', 'mutation { makeWith(pageIds: ["111", "111", "222"]) }', 'makeWith', 'pageIds[2]'],
  ])('refuses a page outside the key in %s: FORBIDDEN on its path, resolver never called', async (_where, source, field, path) => {
    const { result } = await run(EDITOR_A(), source);
    expect(result.data).toBeNull();
    expect(errorsOf(result)).toEqual([
      {
        message: `This API key may not use page "${B}": it is scoped to other pages.`,
        path: [field],
        extensions: { code: 'FORBIDDEN', field: path },
      },
    ]);
    expect(called).toEqual([]);
  });

  it('checks page ids given through variables as well', async () => {
    const { result } = await run(EDITOR_A(), 'mutation ($input: MakeInput!) { make(input: $input) }', {
      input: { nested: { deeper: [{ pageId: B }] } },
    });
    expect(errorsOf(result)[0].extensions).toEqual({ code: 'FORBIDDEN', field: 'nested.deeper[0].pageId' });
    expect(called).toEqual([]);
  });

  it('lets page ids of the key through, wherever they are', async () => {
    const { result } = await run(
      EDITOR_A(),
      'mutation { make(input: { pageId: "111", pageIds: ["111"], nested: { pageId: "111", deeper: [{ pageId: "111" }] } }) }',
    );
    expect(result).toEqual({ data: { make: true } });
    expect(called).toHaveLength(1);
  });

  it('lets an unscoped key name any page', async () => {
    const { result } = await run(Access.apiKey('e', Role.EDITOR, null), 'mutation { make(input: { pageIds: ["222", "333"] }) }');
    expect(result).toEqual({ data: { make: true } });
  });

  it('checks the role before the pages: a VIEWER naming another page is FORBIDDEN without a field', async () => {
    const { result } = await run(VIEWER_A(), 'mutation { make(input: { pageId: "222" }) }');
    expect(errorsOf(result)[0].extensions).toEqual({ code: 'FORBIDDEN' });
  });
});

describe('guardSchema: results of resolvers that forget to narrow', () => {
  it('withholds a nullable single value of another page: null, and tells onViolation', async () => {
    const { result, violations } = await run(VIEWER_A(), '{ thing(id: "b1") { id pageId } }');
    expect(result).toEqual({ data: { thing: null } });
    expect(violations).toEqual(['Query.thing']);
  });

  it('fails a non-null single value of another page with an error, never its data', async () => {
    const { result, violations } = await run(VIEWER_A(), '{ strictThing(id: "b1") { id pageId } }');
    expect(result.data).toBeNull();
    expect(result.errors).toHaveLength(1);
    expect(result.errors?.[0].path).toEqual(['strictThing']);
    expect(result.errors?.[0].message).toContain('Query.strictThing');
    expect(JSON.stringify(result)).not.toContain('b1');
    expect(violations).toEqual(['Query.strictThing']);
  });

  it('filters a list', async () => {
    const { result, violations } = await run(VIEWER_A(), '{ things { id pageId } }');
    expect(result).toEqual({ data: { things: [thing('a1', A), thing('a2', A)] } });
    expect(violations).toEqual(['Query.things']);
  });

  it("filters a connection's edges, leaves its totalCount as the service counted it", async () => {
    const { result, violations } = await run(VIEWER_A(), '{ connection { totalCount edges { cursor node { id pageId } } } }');
    expect(result).toEqual({
      data: {
        connection: {
          totalCount: 4,
          edges: [
            { cursor: 'c-a1', node: thing('a1', A) },
            { cursor: 'c-a2', node: thing('a2', A) },
          ],
        },
      },
    });
    expect(violations).toEqual(['Query.connection']);
  });

  it('withholds nested fields too: nullable → null, non-null → error, list and connection filtered', async () => {
    const { result, violations } = await run(
      VIEWER_A(),
      '{ thing(id: "a1") { id related { id } related_list { id pageId } relatedConnection { totalCount edges { node { id } } } } }',
    );
    expect(result).toEqual({
      data: {
        thing: {
          id: 'a1',
          related: null,
          related_list: [thing('a1-x', A)],
          relatedConnection: { totalCount: 7, edges: [] },
        },
      },
    });
    expect(violations.sort()).toEqual(['Thing.related', 'Thing.relatedConnection', 'Thing.related_list']);

    const strict = await run(VIEWER_A(), '{ thing(id: "a1") { id strictRelated { id } } }');
    // Thing! is non-null: the error nulls the nearest nullable parent, the withheld value never shows.
    expect(strict.result.data).toEqual({ thing: null });
    expect(strict.result.errors?.[0].path).toEqual(['thing', 'strictRelated']);
    expect(JSON.stringify(strict.result)).not.toContain('a1-strict');
    expect(strict.violations).toEqual(['Thing.strictRelated']);
  });

  it('lets values of the key pages through untouched, and tells nobody', async () => {
    const { result, violations } = await run(
      EDITOR_AB(),
      '{ things { id } connection { totalCount edges { node { id } } } thing(id: "b1") { id } }',
    );
    expect(result.errors).toBeUndefined();
    expect(result.data?.things).toHaveLength(4);
    expect((result.data?.connection as { edges: unknown[] }).edges).toHaveLength(4);
    expect(result.data?.thing).toEqual({ id: 'b1' });
    expect(violations).toEqual([]);
  });

  it.each([
    ['an unscoped VIEWER', Access.apiKey('v', Role.VIEWER, null)],
    ['an ADMIN key given pages', Access.apiKey('adm', Role.ADMIN, [A])],
    ['an open gateway', Access.open()],
  ])('shows %s everything and never calls onViolation', async (_name, access) => {
    const { result, violations } = await run(
      access,
      '{ things { id } strictThing(id: "b1") { id related { id } related_list { id } relatedConnection { edges { node { id } } } } connection { edges { node { id } } } }',
    );
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({
      things: THINGS.map(({ id }) => ({ id })),
      strictThing: {
        id: 'b1',
        related: { id: 'b1-related' },
        related_list: [{ id: 'b1-x' }, { id: 'b1-y' }],
        relatedConnection: { edges: [{ node: { id: 'n1' } }] },
      },
      connection: { edges: THINGS.map(({ id }) => ({ node: { id } })) },
    });
    expect(violations).toEqual([]);
  });

  it('leaves values of types that no page owns alone', async () => {
    const { result, violations } = await run(VIEWER_A(), '{ label { text } hello }');
    expect(result).toEqual({ data: { label: { text: `label of ${B}` }, hello: 'hello' } });
    expect(violations).toEqual([]);
  });
});

describe('guardSchema: subscriptions', () => {
  async function subscribeAs(access: Access, source: string) {
    const context: Context = { access, violations: [] };
    const schema = guardSchema(makeSchema(), optionsWith());
    const result = await subscribe({ schema, document: parse(source), contextValue: context });
    return { result, violations: context.violations };
  }

  async function drain(result: Awaited<ReturnType<typeof subscribe>>): Promise<ExecutionResult[]> {
    if (!(Symbol.asyncIterator in result)) throw new Error(`expected a stream, got ${JSON.stringify(result)}`);
    const events: ExecutionResult[] = [];
    for await (const event of result) events.push(event);
    return events;
  }

  it('refuses a subscription naming another page before it starts', async () => {
    const { result } = await subscribeAs(VIEWER_A(), 'subscription { watched(pageId: "222") { id } }');
    expect(Symbol.asyncIterator in result).toBe(false);
    expect(errorsOf(result as ExecutionResult)).toEqual([
      expect.objectContaining({ extensions: { code: 'FORBIDDEN', field: 'pageId' }, path: ['watched'] }),
    ]);
    expect(called).toEqual([]);
  });

  it('refuses a subscription to a key without the role', async () => {
    const schema = guardSchema(makeSchema(), optionsWith({ ...RULES, 'Subscription.watched': 'generate' }));
    const context: Context = { access: VIEWER_A(), violations: [] };
    const result = await subscribe({ schema, document: parse('subscription { watched { id } }'), contextValue: context });
    expect(errorsOf(result as ExecutionResult)[0].extensions).toEqual({ code: 'FORBIDDEN' });
    expect(called).toEqual([]);
  });

  it('withholds an event of another page that a source forgot to filter (non-null: an error), and tells onViolation', async () => {
    const { result, violations } = await subscribeAs(VIEWER_A(), 'subscription { watched { id pageId } }');
    const events = await drain(result);
    expect(called).toEqual(['subscribe']);
    expect(events).toHaveLength(3);
    expect(events[0]).toEqual({ data: { watched: thing('live-a', A) } });
    expect(events[1].data).toBeNull();
    expect(events[1].errors?.[0].message).toContain('Subscription.watched');
    expect(JSON.stringify(events[1])).not.toContain('live-b');
    expect(events[2]).toEqual({ data: { watched: thing('live-a2', A) } });
    expect(violations).toEqual(['Subscription.watched']);
  });

  it.each([
    ['the unscoped subscriber first', true],
    ['the scoped subscriber first', false],
  ])('never shares a result between subscribers of different scope (subscribeSharingResults, %s)', async (_order, unscopedFirst) => {
    // One event object published to two subscribers, as the scan feed does: the results of the
    // same operation are shared per event, so a scoped key must not get one computed for another key.
    const events = [{ watched: thing('shared-a', A) }, { watched: thing('shared-b', B) }];
    const schema = makeSchema(SDL, false);
    const watched = schema.getSubscriptionType()?.getFields().watched;
    if (!watched) throw new Error('no watched field');
    // A source that forgot to filter: both subscribers get both events, the same objects.
    watched.subscribe = async function* () {
      yield* events;
    };
    watched.resolve = (event) => (event as { watched: Thing }).watched;
    guardSchema(schema, optionsWith());
    // Shaped like the gateway's GraphQL context, where the access is request.access.
    const contextOf = (access: Access) => ({ access, violations: [] as FieldCoordinate[], request: { access } });
    const scoped = contextOf(VIEWER_A());
    const unscoped = contextOf(Access.apiKey('v', Role.VIEWER, null));
    const document = parse('subscription { watched { id pageId } }');
    const open = async (context: Context) => {
      const stream = await subscribeSharingResults()({ schema, document, contextValue: context });
      if (!(Symbol.asyncIterator in stream)) throw new Error(JSON.stringify(stream));
      return stream[Symbol.asyncIterator]();
    };
    const streams = { scoped: await open(scoped), unscoped: await open(unscoped) };
    const order = unscopedFirst ? (['unscoped', 'scoped'] as const) : (['scoped', 'unscoped'] as const);
    const results: Record<'scoped' | 'unscoped', ExecutionResult[]> = { scoped: [], unscoped: [] };
    for (let index = 0; index < events.length; index++) {
      for (const who of order) results[who].push((await streams[who].next()).value as ExecutionResult);
    }
    expect(results.unscoped).toEqual([{ data: { watched: thing('shared-a', A) } }, { data: { watched: thing('shared-b', B) } }]);
    expect(results.scoped[0]).toEqual({ data: { watched: thing('shared-a', A) } });
    expect(results.scoped[1].data).toBeNull();
    expect(JSON.stringify(results.scoped)).not.toContain('shared-b');
    expect(scoped.violations).toEqual(['Subscription.watched']);
    expect(unscoped.violations).toEqual([]);
  });

  it('delivers every event to an unscoped key', async () => {
    const { result, violations } = await subscribeAs(Access.apiKey('v', Role.VIEWER, null), 'subscription { watched { id } }');
    const events = await drain(result);
    expect(events).toEqual([
      { data: { watched: { id: 'live-a' } } },
      { data: { watched: { id: 'live-b' } } },
      { data: { watched: { id: 'live-a2' } } },
    ]);
    expect(violations).toEqual([]);
  });
});

import {
  getNamedType,
  getNullableType,
  GraphQLError,
  isCompositeType,
  isListType,
  Kind,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  TypeNameMetaFieldDef,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationRule,
} from 'graphql';

export interface QueryCostOptions {
  /** The most an operation may cost. */
  maxCost: number;
  /**
   * The largest `first` a list field accepts (larger values are refused by its resolver).
   * A `first` given by a variable counts as this, since validation happens before the
   * variables are known; a literal above it counts as it.
   */
  maxPageSize: number;
  /**
   * How many items a list counts for when nothing bounds it: a list field with no `first`
   * argument that is not the page of a field with one (introspection's `types`, `fields`, …).
   */
  unpagedListSize: number;
}

/**
 * What an operation costs: every field selected counts 1, and the selection of a field
 * that returns many is counted once per item it may return. A field with a `first`
 * argument (a connection: `codes`, `scans`, `Code.scans`) multiplies the cost of its
 * selection by `first`: the literal given, the argument's default when it is omitted or
 * null (20 here), or `maxPageSize` when it comes from a variable; the lists inside a
 * connection (`edges`) are that page and count once. Any other list multiplies by
 * `unpagedListSize`. So `codes(first: 100) { edges { node { scans(first: 100) { … } } } }`
 * costs about 100 × 100 × the fields of a scan.
 *
 * Fragments are counted once per spread, each computed once (a fragment spread twice
 * in each of 30 levels costs 2^30 without taking 2^30 steps to count). Unknown fields,
 * types and fragments count 1 or 0: the other validation rules report them.
 */
export function operationCost(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  fragment: (name: string) => FragmentDefinitionNode | undefined,
  options: Pick<QueryCostOptions, 'maxPageSize' | 'unpagedListSize'>,
): number {
  const fragmentCosts = new Map<string, number>();
  const inProgress = new Set<string>();

  const fragmentCost = (name: string): number => {
    const known = fragmentCosts.get(name);
    if (known !== undefined) return known;
    const definition = fragment(name);
    // A cycle is NoFragmentCyclesRule's to report; counted 0 here so that counting ends.
    if (definition === undefined || inProgress.has(name)) return 0;
    inProgress.add(name);
    const type = schema.getType(definition.typeCondition.name.value);
    const cost = selectionSetCost(definition.selectionSet, isCompositeType(type) ? type : undefined, false);
    inProgress.delete(name);
    fragmentCosts.set(name, cost);
    return cost;
  };

  /** `paged`: this selection set is of the object a `first` field returned (a connection). */
  const selectionSetCost = (selectionSet: SelectionSetNode, parentType: GraphQLCompositeType | undefined, paged: boolean): number => {
    let cost = 0;
    for (const selection of selectionSet.selections) {
      switch (selection.kind) {
        case Kind.FIELD:
          cost += fieldCost(selection, parentType, paged);
          break;
        case Kind.INLINE_FRAGMENT: {
          const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parentType;
          cost += selectionSetCost(selection.selectionSet, isCompositeType(type) ? type : undefined, paged);
          break;
        }
        case Kind.FRAGMENT_SPREAD:
          cost += fragmentCost(selection.name.value);
          break;
      }
    }
    return cost;
  };

  const fieldCost = (node: FieldNode, parentType: GraphQLCompositeType | undefined, paged: boolean): number => {
    if (node.selectionSet === undefined) return 1;
    const field = parentType && fieldDefinition(schema, parentType, node.name.value);
    if (field === undefined) return 1;
    const pageSize = firstOf(node, field, options.maxPageSize);
    const type = getNamedType(field.type);
    const childType = isCompositeType(type) ? type : undefined;
    if (pageSize !== undefined) return 1 + pageSize * selectionSetCost(node.selectionSet, childType, true);
    const items = isListType(getNullableType(field.type)) && !paged ? options.unpagedListSize : 1;
    // The page of a connection stays paged through its lists (edges) down to the nodes.
    return 1 + items * selectionSetCost(node.selectionSet, childType, paged && isListType(getNullableType(field.type)));
  };

  const root =
    operation.operation === 'query'
      ? schema.getQueryType()
      : operation.operation === 'mutation'
        ? schema.getMutationType()
        : schema.getSubscriptionType();
  return selectionSetCost(operation.selectionSet, root ?? undefined, false);
}

/** The field of a type, including the meta fields (__typename; __schema and __type on the query type). */
function fieldDefinition(
  schema: GraphQLSchema,
  parentType: GraphQLCompositeType,
  name: string,
): GraphQLField<unknown, unknown> | undefined {
  if (name === TypeNameMetaFieldDef.name) return TypeNameMetaFieldDef;
  if (parentType === schema.getQueryType()) {
    if (name === SchemaMetaFieldDef.name) return SchemaMetaFieldDef;
    if (name === TypeMetaFieldDef.name) return TypeMetaFieldDef;
  }
  return 'getFields' in parentType ? parentType.getFields()[name] : undefined;
}

/** How many items the `first` argument of a field asks for, within 1..max; undefined without one. */
function firstOf(node: FieldNode, field: GraphQLField<unknown, unknown>, max: number): number | undefined {
  const argument = field.args.find((arg) => arg.name === 'first');
  if (argument === undefined) return undefined;
  const value = node.arguments?.find((arg) => arg.name.value === 'first')?.value;
  let first: number;
  if (value === undefined || value.kind === Kind.NULL) {
    first = typeof argument.defaultValue === 'number' ? argument.defaultValue : max;
  } else if (value.kind === Kind.INT) {
    first = Number(value.value);
  } else {
    // A variable, or a value of the wrong type that validation refuses anyway.
    first = max;
  }
  return Math.min(Math.max(first, 1), max);
}

/**
 * A validation rule refusing each operation of the document that costs more than `maxCost`
 * (see operationCost), with `extensions.limit` "cost".
 */
export function queryCostRule(options: QueryCostOptions): ValidationRule {
  return (context) => ({
    OperationDefinition(operation) {
      const cost = operationCost(context.getSchema(), operation, (name) => context.getFragment(name) ?? undefined, options);
      if (cost > options.maxCost) {
        const found = Number.isFinite(cost) ? cost.toLocaleString('en-US') : 'more';
        context.reportError(
          new GraphQLError(
            `Operation cost limit of ${options.maxCost.toLocaleString('en-US')} exceeded, found ${found}: every field counts 1, ` +
              `and a field with \`first\` multiplies the cost of its selection by \`first\` (${options.maxPageSize} when a variable). ` +
              'Ask for fewer items or fewer nested lists.',
            { nodes: operation, extensions: { code: 'GRAPHQL_VALIDATION_FAILED', limit: 'cost' } },
          ),
        );
      }
      // The counting above has read the whole operation.
      return false;
    },
  });
}

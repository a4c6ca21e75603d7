import { Kind, parse, visit, type ASTNode, type GraphQLError } from 'graphql';

/**
 * GraphQL itself rejects some bad arguments before any resolver runs (100.5 for an
 * Int, a string for an enum). Those errors name the problem but not the argument in
 * a machine-readable way; this finds the argument path, e.g. `imageSize` or
 * `data.ref`, so that every bad input carries `extensions.field`.
 */
export function inputFieldOf(error: GraphQLError): string | undefined {
  const variable = /^Variable "\$(\w+)" got invalid value /.exec(error.message)?.[1];
  if (variable !== undefined) {
    // graphql-js writes ` at "<variable><path>"; ` after the printed value. The value may hold
    // any character, but a `"` inside it is always escaped, so this cannot match inside it.
    const at = new RegExp(` at "${variable}((?:\\.\\w+|\\[\\d+\\])+)"; `).exec(error.message);
    if (!at) return variable;
    // List indexes are not part of a field name.
    const segments = at[1]
      .replace(/\[\d+\]/g, '')
      .split('.')
      .filter((segment) => segment !== '');
    return segments.length > 0 ? segments.join('.') : variable;
  }
  const valueNode = error.nodes?.[0];
  if (!valueNode?.loc || !error.source || !isValueNode(valueNode)) return undefined;
  return argumentPathAt(error.source.body, valueNode.loc.start);
}

function isValueNode(node: ASTNode): boolean {
  return [Kind.INT, Kind.FLOAT, Kind.STRING, Kind.BOOLEAN, Kind.ENUM, Kind.NULL, Kind.LIST, Kind.OBJECT].includes(node.kind as Kind);
}

/** The argument/input-field path of the value starting at `offset` in the document. */
function argumentPathAt(document: string, offset: number): string | undefined {
  const path: string[] = [];
  let found: string | undefined;
  visit(parse(document), {
    enter(node) {
      if (node.kind === Kind.ARGUMENT || node.kind === Kind.OBJECT_FIELD) {
        path.push(node.name.value);
        if (node.value.loc?.start === offset) {
          // `input` of generateCode(input: …) is the wrapper, not the field.
          found = (path.length > 1 ? path.slice(1) : path).join('.');
        }
      }
    },
    leave(node) {
      if (node.kind === Kind.ARGUMENT || node.kind === Kind.OBJECT_FIELD) path.pop();
    },
  });
  return found;
}

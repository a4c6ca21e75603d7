import { printSchema, type GraphQLSchema } from 'graphql';
import { buildSchemaSync } from 'type-graphql';
import { CodeResolver } from '../codes/code.resolver';
import { DateTimeScalar } from './date-time.scalar';

let built: GraphQLSchema | undefined;

/** The schema is the same for every gateway in the process: built once. */
export function gatewaySchema(): GraphQLSchema {
  built ??= buildSchemaSync({
    resolvers: [CodeResolver],
    scalarsMap: [{ type: Date, scalar: DateTimeScalar }],
    // Validation is the services' job: they know the fields and the error codes.
    validate: false,
  });
  return built;
}

export function printGatewaySchema(): string {
  return `${printSchema(gatewaySchema())}\n`;
}

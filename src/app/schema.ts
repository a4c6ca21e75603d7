import { printSchema, type GraphQLSchema } from 'graphql';
import { buildSchemaSync } from 'type-graphql';
import { ApiKeyResolver } from '../auth/api-key.resolver';
import { guardSchema } from '../auth/schema-guard';
import { CodeResolver } from '../codes/code.resolver';
import { PageCodesResolver } from '../codes/page-codes.resolver';
import { CodeScansResolver, ScanResolver } from '../scans/scan.resolver';
import { DateTimeScalar } from '../graphql/date-time.scalar';
import { PageResolver } from '../pages/page.resolver';
import { OrphanRefResolver } from '../stats/orphan-refs';
import { CodeStatsResolver, ScanStatsResolver } from '../stats/scan-stats.resolver';
import { PrintSheetResolver } from '../print/print-sheet.resolver';
import { RelayResolver } from '../relay/relay.resolver';
import { schemaGuardOptions } from './permissions';

let built: GraphQLSchema | undefined;

/**
 * The schema is the same for every gateway in the process: built once, its resolvers
 * wrapped by the schema guard (who may call what, and the pages of the key).
 */
export function gatewaySchema(): GraphQLSchema {
  built ??= guardSchema(buildTypeGraphQLSchema(), schemaGuardOptions);
  return built;
}

function buildTypeGraphQLSchema(): GraphQLSchema {
  return buildSchemaSync({
    resolvers: [
      CodeResolver,
      ScanResolver,
      CodeScansResolver,
      PageResolver,
      PageCodesResolver,
      ApiKeyResolver,
      OrphanRefResolver,
      ScanStatsResolver,
      CodeStatsResolver,
      PrintSheetResolver,
      RelayResolver,
    ],
    scalarsMap: [{ type: Date, scalar: DateTimeScalar }],
    // Validation is the services' job: they know the fields and the error codes.
    validate: false,
    // Each gateway has its own feed, reached through the context by every
    // subscription's own `subscribe`; type-graphql's topic-based PubSub is never used.
    pubSub: {
      publish() {
        throw new Error('topic-based publishing is not used: publish through ScanFeed');
      },
      subscribe() {
        throw new Error('topic-based subscriptions are not used: subscribe through ScanFeed');
      },
    },
  });
}

export function printGatewaySchema(): string {
  return `${printSchema(gatewaySchema())}\n`;
}

import type { FieldCoordinate, FieldRule, SchemaGuardOptions } from '../auth/schema-guard';
import type { GraphQLContext } from './graphql-context';

/**
 * Who may call what: every root field of the schema (other fields may be listed too,
 * when one needs more than reading the object it is on). guardSchema refuses to build a schema with a root field missing
 * here, so a new operation is decided on before it is served.
 */
export const FIELD_RULES: Partial<Record<FieldCoordinate, FieldRule>> = {
  'Query.viewer': 'authenticated',
  'Query.codes': 'read',
  'Query.code': 'read',
  'Query.scans': 'read',
  'Query.pages': 'read',
  'Query.page': 'read',
  'Query.orphanRefs': 'read',
  'Query.scanStats': 'read',
  'Query.apiKeys': 'administer',
  'Query.relayTargets': 'administer',
  'Mutation.generateCode': 'generate',
  'Mutation.generateCodes': 'generate',
  'Mutation.createPrintSheet': 'generate',
  'Mutation.registerPage': 'administer',
  'Mutation.updatePage': 'administer',
  'Mutation.removePage': 'administer',
  'Mutation.createApiKey': 'administer',
  'Mutation.revokeApiKey': 'administer',
  'Subscription.scanned': 'read',
};

/** The page every page-owned GraphQL type belongs to. */
export const PAGE_OWNERS: SchemaGuardOptions['owners'] = {
  Code: (code: { pageId: string }) => code.pageId,
  Scan: (scan: { pageId: string }) => scan.pageId,
  Page: (page: { id: string }) => page.id,
  OrphanRef: (orphan: { pageId: string }) => orphan.pageId,
};

export const schemaGuardOptions: SchemaGuardOptions = {
  rules: FIELD_RULES,
  owners: PAGE_OWNERS,
  accessOf: (context) => (context as GraphQLContext).request.access,
  onViolation: (context, coordinate) =>
    (context as GraphQLContext).logger.error(
      { field: coordinate, requestId: (context as GraphQLContext).request.requestId },
      'scope violation: a resolver returned a value outside the pages of the key; it was withheld',
    ),
};

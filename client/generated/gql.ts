/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "query WhoAmI {\n  viewer {\n    role\n    pageIds\n  }\n}\n\nquery CodesByScans($pageId: ID, $first: Int, $after: String) {\n  codes(pageId: $pageId, first: $first, after: $after, orderBy: SCAN_COUNT_DESC) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      node {\n        id\n        ref\n        label\n        scanCount\n        lastScannedAt\n        imageUrl\n        tracking\n        visitCount\n      }\n    }\n  }\n}\n\nquery Today($from: DateTime!, $to: DateTime!, $timeZone: String) {\n  scanStats(from: $from, to: $to, interval: HOUR, timeZone: $timeZone) {\n    total\n    firstTime\n    returning\n    uniquePeople\n    visits\n    buckets {\n      start\n      total\n    }\n    topCodes(first: 5) {\n      count\n      code {\n        id\n        label\n        ref\n      }\n    }\n  }\n}\n\nsubscription LiveScans($pageId: ID) {\n  scanned(pageId: $pageId) {\n    id\n    ref\n    kind\n    source\n    occurredAt\n    code {\n      id\n      scanCount\n      lastScannedAt\n    }\n  }\n}": typeof types.WhoAmIDocument,
};
const documents: Documents = {
    "query WhoAmI {\n  viewer {\n    role\n    pageIds\n  }\n}\n\nquery CodesByScans($pageId: ID, $first: Int, $after: String) {\n  codes(pageId: $pageId, first: $first, after: $after, orderBy: SCAN_COUNT_DESC) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      node {\n        id\n        ref\n        label\n        scanCount\n        lastScannedAt\n        imageUrl\n        tracking\n        visitCount\n      }\n    }\n  }\n}\n\nquery Today($from: DateTime!, $to: DateTime!, $timeZone: String) {\n  scanStats(from: $from, to: $to, interval: HOUR, timeZone: $timeZone) {\n    total\n    firstTime\n    returning\n    uniquePeople\n    visits\n    buckets {\n      start\n      total\n    }\n    topCodes(first: 5) {\n      count\n      code {\n        id\n        label\n        ref\n      }\n    }\n  }\n}\n\nsubscription LiveScans($pageId: ID) {\n  scanned(pageId: $pageId) {\n    id\n    ref\n    kind\n    source\n    occurredAt\n    code {\n      id\n      scanCount\n      lastScannedAt\n    }\n  }\n}": types.WhoAmIDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query WhoAmI {\n  viewer {\n    role\n    pageIds\n  }\n}\n\nquery CodesByScans($pageId: ID, $first: Int, $after: String) {\n  codes(pageId: $pageId, first: $first, after: $after, orderBy: SCAN_COUNT_DESC) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      node {\n        id\n        ref\n        label\n        scanCount\n        lastScannedAt\n        imageUrl\n        tracking\n        visitCount\n      }\n    }\n  }\n}\n\nquery Today($from: DateTime!, $to: DateTime!, $timeZone: String) {\n  scanStats(from: $from, to: $to, interval: HOUR, timeZone: $timeZone) {\n    total\n    firstTime\n    returning\n    uniquePeople\n    visits\n    buckets {\n      start\n      total\n    }\n    topCodes(first: 5) {\n      count\n      code {\n        id\n        label\n        ref\n      }\n    }\n  }\n}\n\nsubscription LiveScans($pageId: ID) {\n  scanned(pageId: $pageId) {\n    id\n    ref\n    kind\n    source\n    occurredAt\n    code {\n      id\n      scanCount\n      lastScannedAt\n    }\n  }\n}"): (typeof documents)["query WhoAmI {\n  viewer {\n    role\n    pageIds\n  }\n}\n\nquery CodesByScans($pageId: ID, $first: Int, $after: String) {\n  codes(pageId: $pageId, first: $first, after: $after, orderBy: SCAN_COUNT_DESC) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      node {\n        id\n        ref\n        label\n        scanCount\n        lastScannedAt\n        imageUrl\n        tracking\n        visitCount\n      }\n    }\n  }\n}\n\nquery Today($from: DateTime!, $to: DateTime!, $timeZone: String) {\n  scanStats(from: $from, to: $to, interval: HOUR, timeZone: $timeZone) {\n    total\n    firstTime\n    returning\n    uniquePeople\n    visits\n    buckets {\n      start\n      total\n    }\n    topCodes(first: 5) {\n      count\n      code {\n        id\n        label\n        ref\n      }\n    }\n  }\n}\n\nsubscription LiveScans($pageId: ID) {\n  scanned(pageId: $pageId) {\n    id\n    ref\n    kind\n    source\n    occurredAt\n    code {\n      id\n      scanCount\n      lastScannedAt\n    }\n  }\n}"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;
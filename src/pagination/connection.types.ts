import { Field, Int, ObjectType, type ClassType } from 'type-graphql';

@ObjectType()
export class PageInfo {
  @Field(() => Boolean)
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true })
  endCursor!: string | null;
}

/** One page of a keyset-paginated list, as services return it. */
export interface ListPage<T> {
  items: T[];
  /** cursor of each item, same order */
  cursors: string[];
  hasNextPage: boolean;
  /** Counted only when asked for: it is the one part of a page that grows with the table. */
  totalCount: () => Promise<number>;
}

export function emptyListPage<T>(): ListPage<T> {
  return { items: [], cursors: [], hasNextPage: false, totalCount: async () => 0 };
}

export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: PageInfo;
  totalCount(): Promise<number>;
}

/** The Relay connection types `<Name>Edge` and `<Name>Connection` of a node type. */
export function connectionType<T extends object>(
  node: ClassType<T>,
  name: string,
): ClassType<Connection<T>> & {
  of(page: ListPage<T>): Connection<T>;
} {
  @ObjectType(`${name}Edge`)
  class Edge {
    @Field(() => String)
    cursor!: string;

    @Field(() => node)
    node!: T;
  }

  @ObjectType(`${name}Connection`)
  class ConnectionOfNode implements Connection<T> {
    @Field(() => [Edge])
    edges!: Edge[];

    @Field(() => PageInfo)
    pageInfo!: PageInfo;

    private count!: () => Promise<number>;

    @Field(() => Int)
    totalCount(): Promise<number> {
      return this.count();
    }

    static of(page: ListPage<T>): ConnectionOfNode {
      return Object.assign(new ConnectionOfNode(), {
        edges: page.items.map((item, index) => ({ node: item, cursor: page.cursors[index] })),
        pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.cursors.at(-1) ?? null },
        count: page.totalCount,
      });
    }
  }
  return ConnectionOfNode;
}

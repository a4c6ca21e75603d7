import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, type GraphQLError } from 'graphql';
import { DocumentCache } from '../../src/graphql/document-cache';
import { TextKeyedCache } from '../../src/graphql/text-keyed-cache';

const schema = buildSchema(readFileSync(path.join(__dirname, '../../schema/schema.graphql'), 'utf8'));

describe('TextKeyedCache', () => {
  it('drops the least recently used entry past maxEntries', () => {
    const cache = new TextKeyedCache<number>({ maxEntries: 2, maxChars: 1000 });
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1); // now b is the least recently used
    cache.set('c', 3);
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([1, undefined, 3]);
    expect(cache.size).toBe(2);
  });

  it('drops the least recently used entries until its keys fit in maxChars, and keeps no key longer than that', () => {
    const cache = new TextKeyedCache<number>({ maxEntries: 100, maxChars: 10 });
    cache.set('aaaa', 1);
    cache.set('bbbb', 2);
    cache.set('cccc', 3);
    expect(cache.chars).toBe(8);
    expect([cache.get('aaaa'), cache.get('bbbb'), cache.get('cccc')]).toEqual([undefined, 2, 3]);
    cache.set('x'.repeat(11), 4);
    expect(cache.get('x'.repeat(11))).toBeUndefined();
    expect(cache.chars).toBe(8);
  });

  it('counts a key set twice once', () => {
    const cache = new TextKeyedCache<number>({ maxEntries: 10, maxChars: 100 });
    cache.set('same', 1);
    cache.set('same', 2);
    expect([cache.size, cache.chars, cache.get('same')]).toEqual([1, 4, 2]);
  });
});

describe('DocumentCache', () => {
  /** A valid subscription padded with a comment to `chars` characters, distinct per `index`. */
  const padded = (index: number, chars: number) => {
    const text = `subscription S${index} { scanned { id } }\n#`;
    return text + 'x'.repeat(chars - text.length);
  };

  it('holds at most 1 MiB of text, however big the documents (40 of 60 KB here)', () => {
    const cache = new DocumentCache(schema, { introspection: true });
    for (let index = 0; index < 40; index++) {
      const document = cache.get(padded(index, 60_000));
      expect(Array.isArray(document)).toBe(false);
    }
    expect(cache.chars).toBeLessThanOrEqual(1024 * 1024);
    expect(cache.size).toBe(Math.floor((1024 * 1024) / 60_000));
  });

  it('holds at most 100 documents, however small', () => {
    const cache = new DocumentCache(schema, { introspection: true });
    for (let index = 0; index < 250; index++) cache.get(padded(index, 50));
    expect(cache.size).toBe(100);
  });

  it('returns the same document for the same text, and the limit errors for a refused one', () => {
    const cache = new DocumentCache(schema, { introspection: true });
    const text = 'subscription { scanned { id } }';
    expect(cache.get(text)).toBe(cache.get(text));
    const deep = 'subscription { scanned { code { scans { edges { node { code { scans { edges { node { code { id } } } } } } } } } } }';
    const errors = cache.get(deep) as readonly GraphQLError[];
    expect(errors.map((error) => [error.extensions.code, error.extensions.limit])).toEqual([['GRAPHQL_VALIDATION_FAILED', 'depth']]);
  });

  it("runs graphql's own rules after the limits, introspection refused when off", () => {
    const closed = new DocumentCache(schema, { introspection: false });
    const [error] = closed.get('{ __schema { queryType { name } } }') as readonly GraphQLError[];
    expect(error.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(error.message).toMatch(/introspection/i);
  });
});

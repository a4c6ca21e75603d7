import type { ValueTransformer } from 'typeorm';

/**
 * Instants are stored as integer epoch milliseconds: they compare, index and
 * round-trip identically on SQLite and PostgreSQL (whose bigint arrives as a string).
 */
export const epochMillis: ValueTransformer = {
  to: (value: Date | null | undefined) => (value == null ? value : value.getTime()),
  from: (value: string | number | null) => (value == null ? null : new Date(Number(value))),
};

/**
 * A page's static code has no ref. It is stored as '' so that (page_id, ref)
 * can be a plain unique key on both databases (NULLs never collide in a unique index).
 */
export const STATIC_REF_KEY = '';

export function refKey(ref: string | null | undefined): string {
  return ref ?? STATIC_REF_KEY;
}

/** One string per (page, ref), for maps keyed by the identity scans are counted under. */
export function pageRefKey(pageId: string, ref: string | null): string {
  return `${pageId}\u0000${refKey(ref)}`;
}

export const nullableRef: ValueTransformer = {
  to: (value: string | null | undefined) => refKey(value),
  from: (value: string) => (value === STATIC_REF_KEY ? null : value),
};

/**
 * Like epochMillis, for "last time something happened": 0 in the database means
 * never (a NOT NULL column sorts and pages without NULL special cases).
 */
export const epochMillisOrNever: ValueTransformer = {
  to: (value: Date | null | undefined) => (value == null ? 0 : value.getTime()),
  from: (value: string | number | null) => (value == null || Number(value) === 0 ? null : new Date(Number(value))),
};

/** A bigint counter read as a number (PostgreSQL's driver answers bigint as a string); exact below 2^53. */
export const bigintNumber: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) => (value == null ? null : Number(value)),
};

import { BadUserInputError } from '../errors';

export const MAX_PAGE_SIZE = 100;

/** `first` of every list: 1..100. */
export function pageSize(first: number | null | undefined, fallback = 20): number {
  const size = first ?? fallback;
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) {
    throw new BadUserInputError('first', `first must be between 1 and ${MAX_PAGE_SIZE}, got ${size}`);
  }
  return size;
}

/**
 * Cursors are opaque to clients: base64url of the ordering they belong to and the
 * sort key of the last row. A cursor of another ordering is refused rather than misread.
 */
export function encodeCursor(ordering: string, key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify([ordering, ...key])).toString('base64url');
}

export function decodeCursor(cursor: string, ordering: string, shape: readonly ('string' | 'number')[]): (string | number)[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== shape.length + 1) {
    throw new BadUserInputError('after', 'after is not a cursor returned by this list');
  }
  const [cursorOrdering, ...key] = parsed as unknown[];
  if (cursorOrdering !== ordering) {
    throw new BadUserInputError('after', 'after is a cursor of another ordering or list; start again without it');
  }
  key.forEach((value, index) => {
    if (typeof value !== shape[index] || (typeof value === 'number' && !Number.isFinite(value))) {
      throw new BadUserInputError('after', 'after is not a cursor returned by this list');
    }
  });
  return key as (string | number)[];
}

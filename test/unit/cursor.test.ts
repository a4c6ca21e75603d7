import { BadUserInputError } from '../../src/errors';
import { decodeCursor, encodeCursor, MAX_PAGE_SIZE, pageSize } from '../../src/pagination/cursor';

/** The BadUserInputError `fn` throws; fails the test when it throws nothing or something else. */
function inputErrorOf(fn: () => unknown): BadUserInputError {
  try {
    fn();
  } catch (error) {
    if (error instanceof BadUserInputError) return error;
    throw error;
  }
  throw new Error('expected a BadUserInputError, nothing was thrown');
}

const base64url = (text: string) => Buffer.from(text).toString('base64url');

describe('pageSize', () => {
  it('defaults to 20 when first is null or undefined, or to the given fallback', () => {
    expect(pageSize(undefined)).toBe(20);
    expect(pageSize(null)).toBe(20);
    expect(pageSize(undefined, 5)).toBe(5);
  });

  it('accepts 1..100', () => {
    expect(MAX_PAGE_SIZE).toBe(100);
    expect(pageSize(1)).toBe(1);
    expect(pageSize(37)).toBe(37);
    expect(pageSize(100)).toBe(100);
  });

  it.each([0, -1, 101, 1.5, NaN, Infinity])('refuses %p with BAD_USER_INPUT on field "first"', (first) => {
    const error = inputErrorOf(() => pageSize(first));
    expect(error.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'first' });
    expect(error.field).toBe('first');
    expect(error.message).toBe(`first must be between 1 and 100, got ${first}`);
  });

  it('refuses a fallback outside 1..100 as well (first unset)', () => {
    expect(inputErrorOf(() => pageSize(undefined, 0)).extensions.field).toBe('first');
  });
});

describe('encodeCursor / decodeCursor', () => {
  it('round-trips a key of strings and numbers', () => {
    const cursor = encodeCursor('SCANS_DESC', [1_700_000_000_000, 'abc-123']);
    expect(decodeCursor(cursor, 'SCANS_DESC', ['number', 'string'])).toEqual([1_700_000_000_000, 'abc-123']);
  });

  it('round-trips unicode, quotes and an empty string', () => {
    const key = ['żółw "quoted" \\ /', ''];
    expect(decodeCursor(encodeCursor('O', key), 'O', ['string', 'string'])).toEqual(key);
  });

  it('round-trips negative and fractional numbers', () => {
    expect(decodeCursor(encodeCursor('O', [-3.25, 0]), 'O', ['number', 'number'])).toEqual([-3.25, 0]);
  });

  it('is opaque base64url: no padding, no + or /', () => {
    const cursor = encodeCursor('ID_DESC', ['????>>>>~~~~']);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(cursor).not.toContain('ID_DESC');
  });

  it('different keys give different cursors', () => {
    expect(encodeCursor('O', ['a'])).not.toBe(encodeCursor('O', ['b']));
    expect(encodeCursor('O', [1])).not.toBe(encodeCursor('O', ['1']));
  });

  it('refuses a cursor of another ordering, saying so', () => {
    const cursor = encodeCursor('CREATED_DESC', [5, 'id']);
    const error = inputErrorOf(() => decodeCursor(cursor, 'SCAN_COUNT_DESC', ['number', 'string']));
    expect(error.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
    expect(error.message).toMatch(/another ordering/);
  });

  const garbage: [string, string][] = [
    ['empty string', ''],
    ['not base64 at all', '!!!not a cursor!!!'],
    ['base64 of plain text', base64url('hello world')],
    ['base64 of a JSON object', base64url('{"ordering":"O","key":[1]}')],
    ['base64 of a JSON string', base64url('"O"')],
    ['base64 of a JSON number', base64url('42')],
    ['base64 of null', base64url('null')],
    ['base64 of truncated JSON', base64url('["O", 1')],
    ['too few elements', base64url('["O"]')],
    ['too many elements', base64url('["O", 1, "x", "extra"]')],
    ['string where a number belongs', base64url('["O", "1", "x"]')],
    ['number where a string belongs', base64url('["O", 1, 2]')],
    ['null in the key', base64url('["O", null, "x"]')],
    ['an array in the key', base64url('["O", [1], "x"]')],
    ['a boolean in the key', base64url('["O", true, "x"]')],
    ['a number beyond double range (Infinity once parsed)', base64url('["O", 1e400, "x"]')],
    ['a negative number beyond double range', base64url('["O", -1e400, "x"]')],
  ];

  it.each(garbage)('refuses %s with field "after"', (_name, cursor) => {
    const error = inputErrorOf(() => decodeCursor(cursor, 'O', ['number', 'string']));
    expect(error.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
  });

  it('the ordering must match exactly (case and type)', () => {
    expect(inputErrorOf(() => decodeCursor(base64url('["o", 1, "x"]'), 'O', ['number', 'string'])).message).toMatch(/another ordering/);
    expect(inputErrorOf(() => decodeCursor(base64url('[1, 1, "x"]'), '1', ['number', 'string'])).message).toMatch(/another ordering/);
  });
});

import { GraphQLError } from 'graphql';
import { Access, Role, type Capability } from '../../src/access';
import { ForbiddenError } from '../../src/errors';

const CAPABILITIES: Capability[] = ['read', 'generate', 'administer'];

/** The FORBIDDEN error `fn` throws, or a failure if it throws nothing. */
function forbidden(fn: () => unknown): ForbiddenError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ForbiddenError);
    expect(error).toBeInstanceOf(GraphQLError);
    return error as ForbiddenError;
  }
  throw new Error('expected a FORBIDDEN error, nothing was thrown');
}

describe('Access', () => {
  it.each([
    [Role.ADMIN, ['read', 'generate', 'administer']],
    [Role.EDITOR, ['read', 'generate']],
    [Role.VIEWER, ['read']],
  ])('gives %s exactly the capabilities %j', (role, expected) => {
    for (const access of [Access.apiKey('key-1', role, null), Access.apiKey('key-1', role, ['111'])]) {
      expect(CAPABILITIES.filter((capability) => access.can(capability))).toEqual(expected);
      expect(access.role).toBe(role);
    }
  });

  it.each([
    ['open', Access.open(), 'open'],
    ['ADMIN_API_KEY', Access.adminApiKey(), 'admin-api-key'],
    ['internal', Access.internal(), 'internal'],
  ])('makes %s an unscoped ADMIN with no stored key', (_name, access, kind) => {
    expect(access.principal.kind).toBe(kind);
    expect(access.role).toBe(Role.ADMIN);
    expect(access.pageIds).toBeNull();
    expect(access.scoped).toBe(false);
    expect(access.apiKeyId).toBeUndefined();
    expect(CAPABILITIES.every((capability) => access.can(capability))).toBe(true);
    expect(access.sees('999')).toBe(true);
  });

  it('never scopes an ADMIN key, even when pages are given', () => {
    const access = Access.apiKey('admin-key', Role.ADMIN, ['111', '222']);
    expect(access.pageIds).toBeNull();
    expect(access.scoped).toBe(false);
    expect(access.sees('333')).toBe(true);
    expect(() => access.requirePage('333', 'pageId')).not.toThrow();
    expect(access.pagesToRead(undefined)).toBeNull();
    expect(access.pagesToRead('333')).toEqual(['333']);
    expect(access.apiKeyId).toBe('admin-key');
    expect(access.principal).toEqual({ kind: 'api-key', apiKeyId: 'admin-key' });
  });

  it.each([Role.EDITOR, Role.VIEWER])('scopes a %s key to its pages', (role) => {
    const access = Access.apiKey('key-2', role, ['111', '222']);
    expect(access.scoped).toBe(true);
    expect(access.pageIds).toEqual(['111', '222']);
    expect(access.sees('111')).toBe(true);
    expect(access.sees('222')).toBe(true);
    expect(access.sees('333')).toBe(false);
    expect(access.sees('')).toBe(false);
    // A page id is matched exactly, not as a prefix or a number.
    expect(access.sees('1111')).toBe(false);
    expect(access.sees('11')).toBe(false);
    expect(access.sees('0111')).toBe(false);
  });

  it('lets an unscoped EDITOR or VIEWER see every page', () => {
    for (const role of [Role.EDITOR, Role.VIEWER]) {
      const access = Access.apiKey('key-3', role, null);
      expect(access.scoped).toBe(false);
      expect(access.sees('anything')).toBe(true);
      expect(access.pagesToRead(null)).toBeNull();
    }
  });

  it('requirePage is FORBIDDEN on the field given, and passes on the pages of the key', () => {
    const access = Access.apiKey('key-4', Role.EDITOR, ['111']);
    expect(() => access.requirePage('111', 'pageId')).not.toThrow();
    const error = forbidden(() => access.requirePage('222', 'pageIds[3]'));
    expect(error.extensions).toEqual({ code: 'FORBIDDEN', field: 'pageIds[3]' });
    // The message names the page the caller sent, and nothing of the key's own pages.
    expect(error.message).toContain('"222"');
    expect(error.message).not.toContain('111');
  });

  it('pagesToRead: the page named (FORBIDDEN outside), else the key pages', () => {
    const access = Access.apiKey('key-5', Role.VIEWER, ['111', '222']);
    expect(access.pagesToRead(undefined)).toEqual(['111', '222']);
    expect(access.pagesToRead(null)).toEqual(['111', '222']);
    expect(access.pagesToRead('222')).toEqual(['222']);
    expect(forbidden(() => access.pagesToRead('333')).extensions).toEqual({ code: 'FORBIDDEN', field: 'pageId' });
    expect(forbidden(() => access.pagesToRead('333', 'filter.pageId')).extensions).toEqual({ code: 'FORBIDDEN', field: 'filter.pageId' });
    // An empty string is a page id like any other, not "no filter".
    expect(forbidden(() => access.pagesToRead('')).extensions).toEqual({ code: 'FORBIDDEN', field: 'pageId' });
  });

  it('does not share its pages with the caller: changing the given array later changes nothing it sees', () => {
    const pages = ['111'];
    const access = Access.apiKey('key-6', Role.VIEWER, pages);
    pages.push('222');
    expect(access.sees('222')).toBe(false);
  });
});

/** Which service produced an image of a code. Mirrors the GraphQL enum `CodeProvider`. */
export enum CodeProviderKind {
  FACEBOOK = 'FACEBOOK',
  LOCAL = 'LOCAL',
}

export type CodeImageContentType = 'image/png' | 'image/jpeg';

/** The bytes of a code's image, as a provider hands them over to be stored. */
export interface CodeImage {
  bytes: Buffer;
  contentType: CodeImageContentType;
  width: number;
  height: number;
  /** the same code as SVG, when the provider draws it (LOCAL codes) */
  svg?: Buffer;
}

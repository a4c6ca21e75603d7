/** Which service produced a code's image. Mirrors the GraphQL enum `CodeProvider`. */
export enum CodeProviderKind {
  FACEBOOK = 'FACEBOOK',
  LOCAL = 'LOCAL',
}

export interface CodeImageRequest {
  pageId: string;
  /** null for the page's static code */
  ref: string | null;
  /** validated: integer 100..2000 */
  imageSize: number;
  /** token of the page; required by the FACEBOOK provider */
  pageAccessToken?: string;
}

export type CodeImageContentType = 'image/png' | 'image/jpeg';

export interface CodeImage {
  bytes: Buffer;
  contentType: CodeImageContentType;
  width: number;
  height: number;
}

/**
 * Obtains the image of a code. Implementations throw the classes of src/errors.ts:
 * BadUserInputError for requests they cannot satisfy, UpstreamError /
 * UpstreamUnavailableError for failures of a remote service.
 */
export interface CodeImageProvider {
  readonly kind: CodeProviderKind;
  obtain(request: CodeImageRequest): Promise<CodeImage>;
}

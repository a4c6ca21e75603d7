import type { CodeImage, CodeProviderKind } from '../../images/image.types';
import type { CodeStyle } from '../code-style';

export interface CodeImageRequest {
  pageId: string;
  /** null for the page's static code */
  ref: string | null;
  /** validated: integer 100..2000 */
  imageSize: number;
  /** what a LOCAL code encodes: the m.me link, or a REDIRECT code's link */
  link: string;
  /** token of the page; required by the FACEBOOK provider */
  pageAccessToken?: string;
  /** colours and center image, validated; the image returned is then checked by both decoders */
  style?: CodeStyle | null;
}

/**
 * Obtains the image of a code. Implementations throw the classes of src/errors.ts:
 * BadUserInputError for requests they cannot satisfy, UpstreamError /
 * UpstreamUnavailableError for failures of a remote service.
 */
export interface CodeImageProvider {
  readonly kind: CodeProviderKind;
  /** Whether obtain needs the page's access token (the caller then resolves the page's own). */
  readonly needsAccessToken: boolean;
  obtain(request: CodeImageRequest): Promise<CodeImage>;
}

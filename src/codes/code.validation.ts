import { BadUserInputError } from '../errors';

/** Limits of the Messenger Code API, which generateCode reproduces exactly. */
export const MIN_IMAGE_SIZE = 100;
export const MAX_IMAGE_SIZE = 2000;
export const DEFAULT_IMAGE_SIZE = 1000;
export const MAX_REF_LENGTH = 250;
export const MAX_LABEL_LENGTH = 200;
const REF_PATTERN = /^[a-zA-Z0-9+/=\-.:_]+$/;

export function validateImageSize(imageSize: number): number {
  if (!Number.isInteger(imageSize) || imageSize < MIN_IMAGE_SIZE || imageSize > MAX_IMAGE_SIZE) {
    throw new BadUserInputError(
      'imageSize',
      `imageSize must be a whole number of pixels from ${MIN_IMAGE_SIZE} to ${MAX_IMAGE_SIZE}, got ${imageSize}`,
    );
  }
  return imageSize;
}

export function validateRef(ref: string, field = 'data.ref'): string {
  if (ref.length === 0) {
    throw new BadUserInputError(field, "ref must not be empty; omit data for the page's static code");
  }
  if (ref.length > MAX_REF_LENGTH) {
    throw new BadUserInputError(field, `ref must be at most ${MAX_REF_LENGTH} characters, got ${ref.length}`);
  }
  if (!REF_PATTERN.test(ref)) {
    const offending = [...ref].find((character) => !REF_PATTERN.test(character));
    throw new BadUserInputError(field, `ref may only contain a-z A-Z 0-9 + / = - . : _ (found ${JSON.stringify(offending)})`);
  }
  return ref;
}

export function validateLabel(label: string | null | undefined): string | null | undefined {
  if (label == null) return label;
  const trimmed = label.trim();
  if (trimmed.length > MAX_LABEL_LENGTH) {
    throw new BadUserInputError('label', `label must be at most ${MAX_LABEL_LENGTH} characters, got ${trimmed.length}`);
  }
  return trimmed === '' ? null : trimmed;
}

/**
 * Which email addresses Gatehouse accepts, for password registration and sign-in and for
 * provider sign-ins alike: printable ASCII only.
 *
 * Addresses are compared lower-cased (`toLowerCase`) and D1's `COLLATE NOCASE` folds ASCII
 * only. Outside ASCII the two disagree, and `toLowerCase` folds some letters INTO ASCII: the
 * Kelvin sign `K` (U+212A) becomes `k`, so `Kevin@x` (with it) would open `kevin@x`'s account.
 * Refusing every non-ASCII address (internationalised addresses, RFC 6531, are rare and
 * mostly unsupported by mail systems anyway) keeps one simple, consistent rule instead of a
 * case-folding table.
 */
import * as v from 'valibot';

/** Printable ASCII, space included (trimming happens elsewhere; the email check refuses it). */
export const ASCII_ONLY = /^[\x20-\x7E]*$/;

export const NON_ASCII_MESSAGE = 'must contain only ASCII characters (internationalised addresses are not accepted)';

/** RFC 5321's limit on a forward path: anything longer is no email address. */
export const MAX_EMAIL_LENGTH = 254;

/**
 * An address typed by a user, as a body field: trimmed, ASCII only (checked before lower-casing,
 * see above), lower-cased, at most {@link MAX_EMAIL_LENGTH}, and a plain email address.
 */
export const emailInput = v.pipe(
  v.string('must be a string'),
  v.trim(),
  v.regex(ASCII_ONLY, NON_ASCII_MESSAGE),
  v.toLowerCase(),
  v.maxLength(MAX_EMAIL_LENGTH, 'is too long'),
  v.email('is not a valid email address'),
);

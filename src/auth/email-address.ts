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

/** Printable ASCII, space included (trimming happens elsewhere; the email check refuses it). */
export const ASCII_ONLY = /^[\x20-\x7E]*$/;

export const NON_ASCII_MESSAGE = 'must contain only ASCII characters (internationalised addresses are not accepted)';

/** RFC 5321's limit on a forward path: anything longer is no email address. */
export const MAX_EMAIL_LENGTH = 254;

/**
 * What a new password must be: NFKC-normalised, between `PASSWORD_MIN_LENGTH` and 256
 * characters (code points, never truncated), and not too easy to guess: a common password or
 * word padded with digits or symbols, a repeated word, a sequence or a keyboard walk is refused
 * (src/auth/password-guesses.ts estimates the guesses). No composition rules, as NIST SP
 * 800-63B and OWASP advise; a blocklist check as they require.
 */
import { estimateGuesses, type PieceKind } from './password-guesses';

export const PASSWORD_MAX_LENGTH = 256;

/**
 * Passwords an attacker who tries common passwords and patterns first would find within this
 * many guesses (log10) are refused: zxcvbn's "safely unguessable" line, 10^10.
 */
export const MIN_GUESSES_LOG10 = 10;

export function normalisePassword(password: string): string {
  return password.normalize('NFKC');
}

export type PasswordProblem = { code: 'too_short' | 'too_long' | 'common'; message: string };

const EXPLANATIONS: readonly [PieceKind, string][] = [
  ['word', 'a common password or word'],
  ['repeat', 'repeated words or characters'],
  ['sequence', 'a sequence like abcd or 1234'],
  ['keyboard', 'a keyboard pattern like qwerty'],
  ['date', 'a year or date'],
];

export function checkNewPassword(normalised: string, minLength: number): PasswordProblem | null {
  const length = [...normalised].length;
  if (length < minLength) return { code: 'too_short', message: `The password must be at least ${minLength} characters long.` };
  if (length > PASSWORD_MAX_LENGTH) return { code: 'too_long', message: `The password must be at most ${PASSWORD_MAX_LENGTH} characters long.` };
  const { log10, kinds } = estimateGuesses(normalised);
  if (log10 < MIN_GUESSES_LOG10) {
    const found = EXPLANATIONS.filter(([kind]) => kinds.has(kind)).map(([, text]) => text);
    const why = found.length > 0 ? `it is built from ${found.join(', ')}` : 'too few characters of too few kinds';
    return {
      code: 'common',
      message: `This password is too common or too easy to guess (${why}). Use a passphrase of several unrelated words, or a password manager.`,
    };
  }
  return null;
}

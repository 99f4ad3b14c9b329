/**
 * What a new password must be: NFKC-normalised, between `PASSWORD_MIN_LENGTH` and 256
 * characters (code points, never truncated), and not one of the common passwords we ship.
 * No composition rules, as NIST SP 800-63B and OWASP advise.
 */
import commonPasswordsText from './data/common-passwords.txt';

export const PASSWORD_MAX_LENGTH = 256;

let common: Set<string> | undefined;

function commonPasswords(): Set<string> {
  // Built on first use, not at module load.
  common ??= new Set(commonPasswordsText.split('\n').filter((l) => l && !l.startsWith('#')));
  return common;
}

export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

export type PasswordProblem = { code: 'too_short' | 'too_long' | 'common'; message: string };

export function checkNewPassword(normalized: string, minLength: number): PasswordProblem | null {
  const length = [...normalized].length;
  if (length < minLength) return { code: 'too_short', message: `The password must be at least ${minLength} characters long.` };
  if (length > PASSWORD_MAX_LENGTH) return { code: 'too_long', message: `The password must be at most ${PASSWORD_MAX_LENGTH} characters long.` };
  if (commonPasswords().has(normalized.toLowerCase())) {
    return { code: 'common', message: 'This password is too common. Choose a longer or less predictable one.' };
  }
  return null;
}

export function commonPasswordCount(): number {
  return commonPasswords().size;
}

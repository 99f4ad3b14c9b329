/**
 * What is wrong with a configuration that starts (load.ts refuses the rest): the warnings the
 * loader, the keyring and the rate limiter know about, named plainly for the console's Health
 * area. Each has a stable id (tests and the page's markup use it) and says what to change.
 */
import type { Config } from './schema';

/** README "Rotating signing keys": rotate the signing key once it is this many days old. */
export const KEY_ROTATION_DAYS = 90;

const DAY = 86_400;

/**
 * When a key was made, as its kid says: `npm run keys:generate` names keys
 * `<YYYY-MM-DD>-<thumbprint>` (keys/generate-jwk.ts). Null for a kid without a date (a key made
 * elsewhere): its age is unknown.
 */
export function keyCreatedAt(kid: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})-/.exec(kid);
  if (!m) return null;
  const at = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return Number.isNaN(at) || new Date(at).getUTCDate() !== Number(m[3]) ? null : Math.floor(at / 1000);
}

/** A key's age in whole days at `now` (Unix seconds), or null when its kid carries no date. */
export function keyAgeDays(kid: string, now: number): number | null {
  const created = keyCreatedAt(kid);
  return created === null ? null : Math.max(0, Math.floor((now - created) / DAY));
}

export interface OperatingProblem {
  id: 'development' | 'generated_signing_key' | 'no_mail' | 'admins_without_second_factor' | 'signing_key_due' | 'no_es256_key' | 'no_rate_limiter';
  title: string;
  detail: string;
}

/** What the checks need besides the settings: facts of the running Worker. */
export interface OperatingFacts {
  /** The kid and algorithm of the key that signs (the first of SIGNING_KEYS). */
  signingKey: { kid: string; alg: string };
  /** Some key is ES256 (ID tokens are). */
  hasEs256: boolean;
  /** A `RATE_LIMITER` binding exists. */
  rateLimiter: boolean;
  now: number;
}

const LOOPBACK = /^(localhost|127\.0\.0\.1|\[::1\])$|\.localhost$/;

export function operatingProblems(config: Config, facts: OperatingFacts): OperatingProblem[] {
  const problems: OperatingProblem[] = [];
  if (config.isDevelopment) {
    const local = LOOPBACK.test(new URL(config.PUBLIC_URL).hostname);
    problems.push({
      id: 'development',
      title: local ? 'Development settings' : 'Development settings on a public address',
      detail: `ENVIRONMENT is "development": plain http is allowed, development sign-in providers and keys are accepted, and Strict-Transport-Security is off.${local ? ' Fine on your own machine; never deploy it.' : ` PUBLIC_URL is ${config.PUBLIC_URL}: set ENVIRONMENT to "production" (wrangler.toml's default).`}`,
    });
  }
  if (config.SIGNING_KEYS === undefined) {
    problems.push({ id: 'generated_signing_key', title: 'Signing key generated in memory', detail: 'SIGNING_KEYS is not set: tokens are signed with a key made when this isolate started, and stop verifying when it ends. Set SIGNING_KEYS (npm run keys:generate).' });
  }
  if (config.mailTransport === null) {
    problems.push({ id: 'no_mail', title: 'No mail transport', detail: 'Neither SMTP_URL nor an EMAIL binding is configured: no address verification, no password reset links, no email sign-in, no notices of account changes (README “Mail”).' });
  }
  if (!config.MFA_REQUIRED_ROLES.includes('admin')) {
    problems.push({ id: 'admins_without_second_factor', title: 'No second factor required for admins', detail: 'MFA_REQUIRED_ROLES does not list "admin": an admin may sign in with a password alone, and the JSON admin API then answers them (the console asks for a second factor itself). Add admin to MFA_REQUIRED_ROLES.' });
  }
  const age = keyAgeDays(facts.signingKey.kid, facts.now);
  if (age !== null && age > KEY_ROTATION_DAYS) {
    problems.push({ id: 'signing_key_due', title: 'Signing key due for rotation', detail: `The signing key ${facts.signingKey.kid} is ${age} days old (rotate every ${KEY_ROTATION_DAYS} days): follow README “Rotating signing keys”.` });
  }
  if (!facts.hasEs256) {
    problems.push({ id: 'no_es256_key', title: 'No ES256 signing key', detail: 'SIGNING_KEYS holds no ES256 (EC P-256) key: apps asking for openid get configuration_error, since ID tokens are ES256.' });
  }
  if (!facts.rateLimiter) {
    problems.push({ id: 'no_rate_limiter', title: 'No rate limiter', detail: 'There is no RATE_LIMITER binding: per-IP burst limits (sign-in, registration, refresh, …) are off. Add [[ratelimits]] to wrangler.toml.' });
  }
  return problems;
}

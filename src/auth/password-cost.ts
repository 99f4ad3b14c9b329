/**
 * The scrypt parameters new password hashes use: N=2^14, r=8, p=5 (16 MiB, one of OWASP's
 * equivalent scrypt settings to N=2^17/r=8/p=1, which would need 128 MiB, the whole Worker).
 *
 * A module of its own so that the workerd tests can run with cheaper parameters (their setup
 * file replaces this module): at these, each registration or password sign-in costs about
 * 170 ms of CPU, which made up more than half of the test suite's time. The production values
 * are pinned by test/worker/accounts/password-hashing-and-policy.test.ts, and the end-to-end
 * tests, which run the built Worker, hash with them.
 */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export const CURRENT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 14, r: 8, p: 5 });

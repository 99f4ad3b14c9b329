/**
 * The worker tests' stand-in for src/auth/password-cost.ts (vitest.config.ts aliases it): cheap
 * scrypt parameters, so that the suite's registrations and sign-ins do not spend most of its
 * time hashing. password-hashing-and-policy.test.ts pins and exercises the production ones.
 */
import type { ScryptParams } from '../../../src/auth/password-cost';

export type { ScryptParams };

export const CURRENT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 10, r: 8, p: 2 });

/** Time as Gatehouse counts it: Unix seconds, as in JWT claims, D1 columns and KV expiries. */

/** The current Unix time in whole seconds. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/**
 * Seconds by which clocks may disagree (ours across locations, an issuer's): accepted on a
 * token's `exp` and `iat`, so anything that must outlive a token (its revocation) adds it too.
 */
export const CLOCK_TOLERANCE_S = 30;

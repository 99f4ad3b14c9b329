/**
 * The OAuth flow cookie's name, apart from oauth-flow-cookie.ts: the proxy only needs the name
 * (to drop it both ways), and importing it from there would put the cookie's JWE code in the
 * start-up modules (scripts/build.mjs splits per module, not per export).
 */
export const FLOW_COOKIE_BASE = 'gatehouse-oauth';
/** The full name as browsers store it (proxied origins may not set it: the proxy drops it). */
export const FLOW_COOKIE = `__Host-${FLOW_COOKIE_BASE}`;

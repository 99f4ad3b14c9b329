// In-workerd cost of Gatehouse's verify step (src/tokens/access-token.ts verifyAccessToken:
// jose's jwtVerify with our key resolver, pinned algorithm, issuer/audience/type/claim checks)
// against a bare crypto.subtle.verify of the same signature with the same imported key.
// GET /?mode=gatehouse|gatehouse-cached|bare|kv|none&n=N&token=JWT runs N verifications in one request; the runner
// times requests from outside (workerd freezes clocks inside a request).
import { keyringFromJwks } from '../../../src/keys/keyring';
import { verifyAccessToken, verifyAccessTokenUncached } from '../../../src/tokens/access-token';

interface Env {
  SIGNING_KEYS: string;
  PUBLIC_URL: string;
  REVOKED: KVNamespace;
}

const b64url = (s: string) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (ch) => ch.charCodeAt(0));

let ring: ReturnType<typeof keyringFromJwks> | undefined;

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const n = Math.min(Number(url.searchParams.get('n') ?? '1'), 100_000);
    const token = url.searchParams.get('token')!;
    const mode = url.searchParams.get('mode');
    const keys = () => (ring ??= keyringFromJwks(JSON.parse(env.SIGNING_KEYS)));
    let ok = 0;
    if (mode === 'gatehouse') {
      const keyring = await keys();
      const ctx = { keyring, issuer: env.PUBLIC_URL, audience: env.PUBLIC_URL };
      // The full check every time: what a token costs the first time an isolate sees it.
      for (let i = 0; i < n; i++) if ((await verifyAccessTokenUncached(ctx, token)).sub) ok++;
    } else if (mode === 'gatehouse-cached') {
      // What requireAuth pays for a token this isolate has verified before (expiry re-checked).
      const keyring = await keys();
      const ctx = { keyring, issuer: env.PUBLIC_URL, audience: env.PUBLIC_URL };
      for (let i = 0; i < n; i++) if ((await verifyAccessToken(ctx, token)).sub) ok++;
    } else if (mode === 'bare') {
      const keyring = await keys();
      const [h, p, s] = token.split('.');
      const data = new TextEncoder().encode(`${h}.${p}`);
      const sig = b64url(s!);
      const key = keyring.active.publicKey;
      for (let i = 0; i < n; i++) if (await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, sig, data)) ok++;
    } else if (mode === 'kv') {
      // The revocation lookup Gatehouse makes per request (storage/revocation.ts): one multi-key get.
      for (let i = 0; i < n; i++) if ((await env.REVOKED.get(['jti:bench', 'sid:bench'], 'text')).size === 2) ok++;
    }
    return new Response(String(ok));
  },
};

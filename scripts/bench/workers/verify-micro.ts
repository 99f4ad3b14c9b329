// In-workerd cost of Gatehouse's verify step (src/tokens/access-token.ts verifyAccessToken:
// the JWS verified with the key its kid names among ours, pinned algorithm, header checks, then
// issuer/audience/type/lifetime/claim checks)
// against a bare crypto.subtle.verify of the same signature with the same imported key.
// `floor` is the least any verifier of a fresh token must do (split, decode and parse header and
// payload, encode the signing input, decode the signature, verify) with no check at all: the
// gap between `bare` and `floor` is per-token work no library can skip.
// GET /?mode=gatehouse|gatehouse-cached|bare|floor|kv|none&n=N&token=JWT runs N verifications in one request; the runner
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
    } else if (mode === 'floor') {
      const keyring = await keys();
      const enc = new TextEncoder();
      const dec = new TextDecoder();
      const fromB64url = (text: string) => Uint8Array.fromBase64(text, { alphabet: 'base64url' });
      for (let i = 0; i < n; i++) {
        const a = token.indexOf('.');
        const b = token.indexOf('.', a + 1);
        const header: { kid: string } = JSON.parse(dec.decode(fromB64url(token.slice(0, a))));
        const key = keyring.byKid.get(header.kid)!.publicKey;
        const signature = fromB64url(token.slice(b + 1));
        if (await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, signature, enc.encode(token.slice(0, b)))) {
          if (JSON.parse(dec.decode(fromB64url(token.slice(a + 1, b)))).sub) ok++;
        }
      }
    } else if (mode === 'kv') {
      // The revocation lookup Gatehouse makes when its per-isolate cache has no answer
      // (storage/revocation.ts): one key per session, read with cacheTtl 30.
      for (let i = 0; i < n; i++) if ((await env.REVOKED.get('sid:bench', { type: 'text', cacheTtl: 30 })) === null) ok++;
    }
    return new Response(String(ok));
  },
};

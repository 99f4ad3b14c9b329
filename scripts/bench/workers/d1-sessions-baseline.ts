// Baseline for `npm run bench:scale`: Gatehouse's refresh as it was when every session was a row
// in one D1 database (refreshSession in src/auth/sessions.ts and the sessions table functions in
// src/storage/sessions.ts at be8e3c8), written out as one small Worker so that the same load can
// be run against the old design. Per refresh, in the old order: find the session by the refresh
// token's hash; if none, look the hash up among rotated tokens (a just-rotated one within the
// grace is `conflict`, an older one ends its session: reuse); check the session is live and
// within its absolute end; read the user; rotate with the conditional UPDATE and record the old
// hash as rotated in the same batch (the loser of a race gets `conflict`); sign an access token
// with jose (ES256); write the `refresh` audit row. Same tables and indexes as migrations/.
// Left out: the optional revocation fence (off by default then), KV writes (only reuse and a
// disabled user write KV), cookies, the request log line and the app's routing.
import { importJWK, SignJWT } from 'jose';

interface Env {
  DB: D1Database;
  SIGNING_KEYS: string;
  PUBLIC_URL: string;
  RATE_LIMITER: RateLimit;
}

const ACCESS_TOKEN_TTL = 600;
const REFRESH_TOKEN_TTL = 30 * 86_400;
const SESSION_MAX_AGE = 90 * 86_400;
const GRACE_S = 10;
const SHAPE = /^[A-Za-z0-9_-]{43}$/;

interface SessionRow {
  id: string;
  user_id: string;
  refresh_hash: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  amr: string;
  auth_time: number | null;
}
interface UserRow {
  id: string;
  email: string;
  email_verified: number;
  roles: string;
  disabled_at: number | null;
}

let signer: Promise<{ key: CryptoKey; kid: string }> | undefined;
function signingKey(env: Env) {
  signer ??= (async () => {
    const jwk = JSON.parse(env.SIGNING_KEYS).keys[0];
    return { key: (await importJWK(jwk, 'ES256')) as CryptoKey, kid: jwk.kid as string };
  })();
  return signer;
}

const b64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
async function sha256(text: string): Promise<string> {
  return b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))));
}
const randomId = (n: number) => b64url(crypto.getRandomValues(new Uint8Array(n)));

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
const refused = () => json(401, { error: 'invalid_token', error_description: 'The refresh token is invalid, expired or revoked.' });
const conflict = () => json(409, { error: 'conflict', error_description: 'This refresh token was just used by another request.' });

async function audit(env: Env, event: string, outcome: string, userId: string | null, detail: unknown, request: Request, now: number) {
  await env.DB
    .prepare('INSERT INTO auth_events (at, event, outcome, user_id, ip, user_agent, detail) VALUES (?, ?, ?, ?, ?, ?, ?)')
    .bind(now, event, outcome, userId, request.headers.get('cf-connecting-ip'), request.headers.get('user-agent'), JSON.stringify(detail))
    .run();
}

async function refresh(env: Env, request: Request): Promise<Response> {
  const body = (await request.json().catch(() => null)) as { refresh_token?: unknown } | null;
  const token = body?.refresh_token;
  if (typeof token !== 'string' || !SHAPE.test(token)) return refused();
  const hash = await sha256(token);
  const t = Math.floor(Date.now() / 1000);
  const session = await env.DB.prepare('SELECT * FROM sessions WHERE refresh_hash = ?').bind(hash).first<SessionRow>();
  if (!session) {
    const rotated = await env.DB.prepare('SELECT session_id, rotated_at FROM rotated_refresh_tokens WHERE hash = ?').bind(hash).first<{ session_id: string; rotated_at: number }>();
    if (rotated) {
      const reused = await env.DB.prepare('SELECT * FROM sessions WHERE id = ?').bind(rotated.session_id).first<SessionRow>();
      const live = reused !== null && reused.revoked_at === null && reused.expires_at > t;
      if (live && rotated.rotated_at >= t - GRACE_S) return conflict();
      await env.DB.prepare('UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').bind(t, rotated.session_id).run();
      await audit(env, 'refresh_token_reuse', 'security', reused?.user_id ?? null, { sid: rotated.session_id }, request, t);
    }
    return refused();
  }
  const absoluteEnd = session.created_at + SESSION_MAX_AGE;
  if (session.revoked_at !== null || session.expires_at <= t || absoluteEnd <= t) return refused();
  const user = await env.DB.prepare('SELECT * FROM users WHERE id = ?').bind(session.user_id).first<UserRow>();
  if (!user || user.disabled_at !== null) return refused();
  const next = randomId(32);
  const expiresAt = Math.min(t + REFRESH_TOKEN_TTL, absoluteEnd);
  const [update] = await env.DB.batch([
    env.DB
      .prepare('UPDATE sessions SET refresh_hash = ?, expires_at = ?, last_used_at = ? WHERE id = ? AND refresh_hash = ? AND revoked_at IS NULL AND expires_at > ?')
      .bind(await sha256(next), expiresAt, t, session.id, hash, t),
    env.DB.prepare('INSERT OR IGNORE INTO rotated_refresh_tokens (hash, session_id, rotated_at) SELECT ?, ?, ? WHERE changes() = 1').bind(hash, session.id, t),
  ]);
  if (update?.meta.changes !== 1) return conflict();
  const { key, kid } = await signingKey(env);
  const exp = Math.min(t + ACCESS_TOKEN_TTL, absoluteEnd, expiresAt);
  const accessToken = await new SignJWT({
    sid: session.id,
    email: user.email,
    email_verified: user.email_verified === 1,
    roles: JSON.parse(user.roles) as string[],
    amr: JSON.parse(session.amr) as string[],
    auth_time: session.auth_time ?? session.created_at,
  })
    .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
    .setSubject(user.id)
    .setIssuer(env.PUBLIC_URL)
    .setAudience(env.PUBLIC_URL)
    .setIssuedAt(t)
    .setExpirationTime(exp)
    .setJti(randomId(16))
    .sign(key);
  await audit(env, 'refresh', 'success', user.id, { sid: session.id }, request, t);
  return json(200, { token_type: 'Bearer', access_token: accessToken, expires_in: exp - t, refresh_token: next, user: { id: user.id, email: user.email } });
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (request.method !== 'POST' || url.pathname !== '/auth/refresh') return json(404, { error: 'not_found' });
    // The old route's burst limit (the `refresh` bucket per client IP) ran before the handler.
    const limited = await env.RATE_LIMITER.limit({ key: `refresh:${request.headers.get('cf-connecting-ip') ?? 'unknown'}` });
    if (!limited.success) return json(429, { error: 'rate_limited' });
    return refresh(env, request);
  },
};

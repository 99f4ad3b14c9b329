/**
 * Proxy test helpers: recording origins (service-binding shaped, as `env.NAME.fetch`), an env
 * with ROUTES, and sign-in shortcuts.
 */
import { baseEnv, call, GOOD_PASSWORD, makeEnv, registerUser, setCookies, uniqueEmail, type TestEnv } from './helpers';

export interface SeenRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface RecordingOrigin {
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  seen: SeenRequest[];
}

/** An origin that records what it saw and answers with `respond` (default: 200 "ok"). */
export function recordingOrigin(respond: (req: Request) => Response | Promise<Response> = () => new Response('ok')): RecordingOrigin {
  const seen: SeenRequest[] = [];
  return {
    seen,
    async fetch(input, init) {
      const req = new Request(input, init);
      const headers: Record<string, string> = {};
      for (const [k, v] of req.headers) headers[k] = v;
      const body = req.body ? await new Response(req.body).text() : '';
      seen.push({ method: req.method, url: req.url, headers, body });
      return respond(req);
    },
  };
}

export function proxyEnv(routes: unknown[], bindings: Record<string, unknown> = {}, settings: Record<string, unknown> = {}): TestEnv {
  return makeEnv({ ROUTES: JSON.stringify(routes), ...bindings, ...settings });
}

/** Registers a user in cookie mode and returns the two gateway cookies. */
export async function cookieSession(env: TestEnv, email = uniqueEmail('cookie')) {
  const r = await call('/auth/register', { json: { email, password: GOOD_PASSWORD, session: 'cookie' }, env });
  if (r.status !== 201) throw new Error(`register failed: ${r.status}`);
  const set = setCookies(r);
  return {
    email,
    cookies: {
      '__Host-gatehouse': set.get('__Host-gatehouse')!.value,
      '__Secure-gatehouse-refresh': set.get('__Secure-gatehouse-refresh')!.value,
    },
  };
}

/** Gives a user stored roles and/or a verified email, then signs in again to get a token with them. */
export async function promote(env: TestEnv, email: string, changes: { roles?: string[]; verified?: boolean }) {
  if (changes.roles) await baseEnv.DB.prepare('UPDATE users SET roles = ? WHERE email = ?').bind(JSON.stringify(changes.roles), email).run();
  if (changes.verified) await baseEnv.DB.prepare('UPDATE users SET email_verified = 1 WHERE email = ?').bind(email).run();
  const r = await call('/auth/login', { json: { email, password: GOOD_PASSWORD }, env });
  if (r.status !== 200) throw new Error(`login failed: ${r.status}`);
  return ((await r.json()) as { access_token: string }).access_token;
}

export { registerUser };

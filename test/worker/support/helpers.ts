/**
 * Test helpers for workerd tests: call the real Worker entry with an env of our choosing
 * (real local D1 and KV from `cloudflare:test`), read D1/KV state, forge tokens.
 */
import { sessionRows } from './user-sessions-store';
import { createExecutionContext, env as baseEnv, waitOnExecutionContext } from 'cloudflare:test';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { expect } from 'vitest';
import { hashPassword } from '../../../src/auth/password-hash';
import { normalisePassword } from '../../../src/auth/password-policy';
import worker from '../../../src/index';
import { generateSigningJwk } from '../../../src/keys/keyring';
import { createUser, type User } from '../../../src/storage/users';

export const PUBLIC_URL = 'https://gate.example.com';

/** One ES256 key for the whole file, made once. */
export const testKey: JWK = await generateSigningJwk('ES256');

export type TestEnv = typeof baseEnv & Record<string, unknown>;

/**
 * The local rate limiter with buckets of the running test file's own: files that share a
 * runtime (vitest.config.ts), and so the limiter's counts, never spend each other's limits,
 * while the requests of one file count together, as they did in a runtime of their own.
 */
function fileBuckets(limiter: RateLimit | undefined): RateLimit | undefined {
  if (!limiter) return limiter;
  return { limit: ({ key }) => limiter.limit({ key: `${expect.getState().testPath ?? ''}:${key}` }) };
}

/** A production-mode env with a real signing key; override any setting or binding. */
export function makeEnv(overrides: Record<string, unknown> = {}): TestEnv {
  return {
    ...baseEnv,
    RATE_LIMITER: fileBuckets(baseEnv.RATE_LIMITER),
    ENVIRONMENT: 'production',
    PUBLIC_URL,
    SIGNING_KEYS: JSON.stringify({ keys: [testKey] }),
    ...overrides,
  } as TestEnv;
}

/** The default env, reused across requests so config and keys are parsed once (as in an isolate). */
export const defaultEnv = makeEnv();

export interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  json?: unknown;
  form?: Record<string, string>;
  body?: BodyInit;
  env?: TestEnv;
  /** Cookie header built from a jar. */
  cookies?: Record<string, string>;
}

export async function call(path: string, opts: CallOptions = {}): Promise<Response> {
  const headers = new Headers(opts.headers);
  let body = opts.body;
  if (opts.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(opts.json);
  } else if (opts.form) {
    headers.set('content-type', 'application/x-www-form-urlencoded');
    body = new URLSearchParams(opts.form).toString();
  }
  if (opts.cookies) headers.set('cookie', Object.entries(opts.cookies).map(([k, v]) => `${k}=${v}`).join('; '));
  const method = opts.method ?? (body !== undefined ? 'POST' : 'GET');
  // As a browser does: an unsafe request carries Origin (the gateway refuses a cookie-authenticated
  // one that says nothing of where it comes from). A test of that refusal sets the Cookie header itself.
  if (opts.cookies && !['GET', 'HEAD', 'OPTIONS'].includes(method.toUpperCase()) && !headers.has('origin') && !headers.has('sec-fetch-site')) {
    headers.set('origin', PUBLIC_URL);
  }
  if (!headers.has('cf-connecting-ip')) headers.set('cf-connecting-ip', '203.0.113.7');
  const request = new Request(new URL(path, PUBLIC_URL), {
    method,
    headers,
    body,
    redirect: 'manual',
  });
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, (opts.env ?? defaultEnv) as never, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/** Parses `Set-Cookie` headers into name -> { value, attributes }. */
export function setCookies(response: Response): Map<string, { value: string; attributes: string }> {
  const out = new Map<string, { value: string; attributes: string }>();
  for (const line of response.headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(';');
    const i = pair!.indexOf('=');
    out.set(pair!.slice(0, i).trim(), { value: pair!.slice(i + 1).trim(), attributes: attrs.join(';').trim() });
  }
  return out;
}

let counter = 0;
export function uniqueEmail(prefix = 'user'): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}@example.com`;
}

export const GOOD_PASSWORD = 'correct horse battery staple';

export interface TokenResponse {
  token_type: string;
  access_token: string;
  expires_in: number;
  refresh_token: string;
  user: { id: string; email: string; email_verified: boolean; roles: string[] };
}

/** Registers a password user in token mode and returns the token response. */
export async function registerUser(email = uniqueEmail(), password = GOOD_PASSWORD, env?: TestEnv): Promise<TokenResponse> {
  const r = await call('/auth/register', { json: { email, password }, env });
  if (r.status !== 201) throw new Error(`register failed: ${r.status} ${await r.text()}`);
  return r.json();
}

/**
 * GOOD_PASSWORD's hash, made once per test file by the real hashPassword with the current
 * parameters: a seeded user's password checks exactly as a registered user's does.
 */
let seededHash: Promise<string> | undefined;

export interface SeedOptions {
  email?: string;
  verified?: boolean;
  roles?: string[];
  name?: string;
}

/**
 * A password user (password GOOD_PASSWORD) written straight into D1, for tests about something
 * other than registration: no scrypt run, no session. Sign in with {@link signIn} when the test
 * needs one (a password sign-in costs one scrypt run either way, as a registration does).
 */
export async function seedUser({ email = uniqueEmail(), verified = false, roles = [], name }: SeedOptions = {}): Promise<User> {
  const passwordHash = await (seededHash ??= hashPassword(normalisePassword(GOOD_PASSWORD)));
  const user = await createUser(baseEnv.DB, { email, emailVerified: verified, name, passwordHash, roles }, Math.floor(Date.now() / 1000));
  if (!user) throw new Error(`seedUser: ${email} is taken`);
  return user;
}

/** A real password sign-in in token mode (POST /auth/login); throws unless it gives tokens. */
export async function signIn(email: string, password = GOOD_PASSWORD, env?: TestEnv): Promise<TokenResponse> {
  const r = await call('/auth/login', { json: { email, password }, env });
  if (r.status !== 200) throw new Error(`sign-in failed: ${r.status} ${await r.text()}`);
  return r.json();
}

/** A seeded user (verified, with roles, ...) signed in through POST /auth/login. */
export async function signedInUser(options: SeedOptions = {}, env?: TestEnv): Promise<TokenResponse> {
  const user = await seedUser(options);
  return signIn(user.email, GOOD_PASSWORD, env);
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Tables that live in each user's sessions object (storage/user-sessions.ts), not in D1. */
const SESSION_TABLES = new Set(['sessions', 'rotated_refresh_tokens']);

/** Rows of `table` matching `where`: in D1, or summed over the users' sessions objects for their tables. */
export async function countRows(table: string, where = '1=1', ...params: unknown[]): Promise<number> {
  if (SESSION_TABLES.has(table)) {
    const rows = await sessionRows<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`, params);
    return rows.reduce((sum, r) => sum + r.n, 0);
  }
  const row = await baseEnv.DB.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`).bind(...params).first<{ n: number }>();
  return row?.n ?? 0;
}

/** All keys currently in the REVOKED namespace. */
export async function revokedKeys(): Promise<string[]> {
  const list = await baseEnv.REVOKED.list();
  return list.keys.map((k) => k.name).sort();
}

/** A snapshot of everything a refused request must not change. */
export async function stateSnapshot() {
  return {
    users: await countRows('users'),
    sessions: await countRows('sessions'),
    liveSessions: await countRows('sessions', 'revoked_at IS NULL'),
    identities: await countRows('identities'),
    revoked: await revokedKeys(),
  };
}

/** A foreign key pair, for forging tokens this gateway did not sign. */
export async function foreignKey(alg: 'ES256' | 'EdDSA' = 'ES256') {
  const pair = await generateKeyPair(alg, { extractable: true });
  return { ...pair, publicJwk: await exportJWK(pair.publicKey) };
}

export { baseEnv };

/**
 * Passkeys, registration and management: options, verification and storage with a
 * real software authenticator (passkeys-helpers.ts), the recent sign-in rule, list / rename /
 * remove (JSON and the account page's forms), the account page's section and its CSP.
 */
import { describe, expect, it } from 'vitest';
import { baseEnv, bearer, call, countRows, makeEnv, PUBLIC_URL, registerUser, setCookies, type TokenResponse, uniqueEmail } from '../support/helpers';
import { FLAGS, postJson, type RegistrationOptions, SoftAuthenticator } from '../support/passkeys-helpers';
import { sha256 } from '../../../src/util/random';
import { sessionExec } from '../support/user-sessions-store';

const NAV = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin' };

async function options(user: TokenResponse) {
  const r = await postJson('/auth/passkeys/register/options', {}, { headers: bearer(user.access_token) });
  expect(r.status).toBe(200);
  return r.body as unknown as RegistrationOptions;
}

/** Registers a passkey for `user` and returns its authenticator. */
async function addPasskey(user: TokenResponse, name?: string) {
  const auth = await SoftAuthenticator.create();
  const credential = await auth.register(await options(user));
  const r = await postJson('/auth/passkeys/register', name ? { credential, name } : { credential }, { headers: bearer(user.access_token) });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return auth;
}

const passkeyRow = (id: string) => baseEnv.DB.prepare('SELECT * FROM passkeys WHERE id = ?').bind(id).first<Record<string, unknown>>();
/**
 * Moves the user's sign-ins (`auth_time`) `seconds` into the past and refreshes, so the bearer
 * token (and the cookie jar, if given) carry the old auth_time, as an old session's would.
 */
async function ageSessions(user: TokenResponse, seconds: number, cookies?: Record<string, string>) {
  await sessionExec('UPDATE sessions SET auth_time = auth_time - ? WHERE user_id = ?', [seconds, user.user.id]);
  const r = await call('/auth/refresh', { json: { refresh_token: user.refresh_token } });
  expect(r.status).toBe(200);
  const t = await r.json<TokenResponse>();
  user.access_token = t.access_token;
  user.refresh_token = t.refresh_token;
  if (cookies) {
    const rc = await call('/auth/refresh', { method: 'POST', cookies });
    expect(rc.status).toBe(200);
    for (const [k, v] of setCookies(rc)) cookies[k] = v.value;
  }
}

describe('passkey registration', () => {
  it('options: rp id and origin from PUBLIC_URL, resident key required, user verification preferred, no attestation; the challenge is stored hashed and bound to the user', async () => {
    const user = await registerUser();
    const o = await options(user);
    expect(o.rp).toEqual({ id: 'gate.example.com', name: 'Gatehouse' });
    expect(o.authenticatorSelection).toMatchObject({ residentKey: 'required', userVerification: 'preferred' });
    expect(o.attestation).toBe('none');
    expect(o.user.name).toBe(user.user.email);
    // The user handle is the (random) user id, no personal data.
    expect(new TextDecoder().decode(Uint8Array.from(atob(o.user.id.replace(/-/g, '+').replace(/_/g, '/')), (ch) => ch.charCodeAt(0)))).toBe(user.user.id);
    expect(o.excludeCredentials).toEqual([]);
    const row = await baseEnv.DB.prepare('SELECT * FROM webauthn_challenges WHERE challenge_hash = ?').bind(await sha256(o.challenge)).first();
    expect(row).toMatchObject({ purpose: 'register', user_id: user.user.id });
    expect(await countRows('webauthn_challenges', 'challenge_hash = ?', o.challenge)).toBe(0); // never stored in the clear
  });

  it('verifies a real registration and stores the credential (public key, counter, transports, device type, backup flag, name); options then exclude it', async () => {
    const user = await registerUser();
    const auth = await SoftAuthenticator.create();
    const o = await options(user);
    const credential = await auth.register(o, { flags: FLAGS.UP | FLAGS.UV | FLAGS.BE | FLAGS.BS, transports: ['internal', 'hybrid'] });
    const r = await postJson('/auth/passkeys/register', { credential, name: '  Work laptop ' }, { headers: bearer(user.access_token) });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ passkey: { id: auth.id, name: 'Work laptop', device_type: 'multiDevice', backed_up: true, transports: ['internal', 'hybrid'], last_used_at: null } });
    const row = await passkeyRow(auth.id);
    expect(row).toMatchObject({ user_id: user.user.id, counter: 0, device_type: 'multiDevice', backed_up: 1, name: 'Work laptop', transports: '["internal","hybrid"]' });
    expect(String(row!.public_key)).toMatch(/^[A-Za-z0-9_-]{60,}$/);
    // The challenge is used up, and an event is recorded.
    expect(await countRows('webauthn_challenges', 'challenge_hash = ?', await sha256(o.challenge))).toBe(0);
    expect(await countRows('auth_events', "event = 'passkey_added' AND user_id = ?", user.user.id)).toBe(1);
    expect((await options(user)).excludeCredentials?.map((c) => c.id)).toEqual([auth.id]);
  });

  it('a device-bound passkey without a name gets the device label as its name', async () => {
    const user = await registerUser();
    const auth = await SoftAuthenticator.create();
    const credential = await auth.register(await options(user), { flags: FLAGS.UP });
    const r = await postJson('/auth/passkeys/register', { credential }, { headers: { ...bearer(user.access_token), 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0' } });
    expect(r.status).toBe(201);
    expect(await passkeyRow(auth.id)).toMatchObject({ device_type: 'singleDevice', backed_up: 0, name: 'Firefox on Linux' });
  });

  it('needs a sign-in from the last 10 minutes: options, registration and removal are refused with 403 reauthenticate, nothing changes', async () => {
    const user = await registerUser();
    const kept = await addPasskey(user);
    const auth = await SoftAuthenticator.create();
    const credential = await auth.register(await options(user));
    await ageSessions(user, 601);
    for (const r of [
      await call('/auth/passkeys/register/options', { method: 'POST', json: {}, headers: bearer(user.access_token) }),
      await call('/auth/passkeys/register', { method: 'POST', json: { credential }, headers: bearer(user.access_token) }),
      await call(`/auth/passkeys/${kept.id}`, { method: 'DELETE', headers: bearer(user.access_token) }),
    ]) {
      expect(r.status).toBe(403);
      expect(await r.json()).toMatchObject({ error: 'forbidden', reason: 'reauthenticate' });
    }
    expect(await countRows('passkeys', 'user_id = ?', user.user.id)).toBe(1);
    expect(await passkeyRow(kept.id)).not.toBeNull();
    // Renaming is not a factor change: allowed.
    expect((await call(`/auth/passkeys/${kept.id}`, { method: 'PATCH', json: { name: 'Old' }, headers: bearer(user.access_token) })).status).toBe(200);
  });

  it('refuses a replayed registration, another user’s challenge, a wrong origin or rp id, and the same credential twice, with clear errors', async () => {
    const user = await registerUser();
    const other = await registerUser();
    const auth = await SoftAuthenticator.create();
    const o = await options(user);
    const credential = await auth.register(o);
    expect((await postJson('/auth/passkeys/register', { credential }, { headers: bearer(user.access_token) })).status).toBe(201);
    const replay = await postJson('/auth/passkeys/register', { credential }, { headers: bearer(user.access_token) });
    expect(replay.status).toBe(401);
    expect(replay.body).toMatchObject({ error: 'invalid_credentials', reason: 'challenge' });

    // A challenge issued to another user.
    const stolen = await (await SoftAuthenticator.create()).register(await options(other));
    const foreign = await postJson('/auth/passkeys/register', { credential: stolen }, { headers: bearer(user.access_token) });
    expect(foreign.body).toMatchObject({ error: 'invalid_credentials', reason: 'challenge' });

    const wrongOrigin = await (await SoftAuthenticator.create()).register(await options(user), { origin: 'https://evil.example' });
    expect((await postJson('/auth/passkeys/register', { credential: wrongOrigin }, { headers: bearer(user.access_token) })).body).toMatchObject({ error: 'invalid_credentials', reason: 'origin' });

    const wrongRp = await (await SoftAuthenticator.create()).register(await options(user), { rpId: 'evil.example' });
    const rp = await postJson('/auth/passkeys/register', { credential: wrongRp }, { headers: bearer(user.access_token) });
    expect(rp.status).toBe(400);
    expect(rp.body).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('could not be verified') });

    // The same authenticator credential again, with a fresh challenge.
    const again = await auth.register(await options(user));
    const dup = await postJson('/auth/passkeys/register', { credential: again }, { headers: bearer(user.access_token) });
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ error: 'conflict' });
    expect(await countRows('passkeys', 'user_id = ?', user.user.id)).toBe(1);
    expect(await countRows('passkeys', 'user_id = ?', other.user.id)).toBe(0);
  });

  it('malformed registration bodies get 400 invalid_request, never a 500', async () => {
    const user = await registerUser();
    const h = { ...bearer(user.access_token), 'content-type': 'application/json' };
    const bodies = [
      '{',
      '[]',
      JSON.stringify({}),
      JSON.stringify({ credential: 'x' }),
      JSON.stringify({ credential: { id: 'a', rawId: 'a', type: 'public-key', response: { clientDataJSON: '!!', attestationObject: 'AA' } } }),
      JSON.stringify({ credential: { id: 'a', rawId: 'a', type: 'public-key', response: { clientDataJSON: 'bm90LWpzb24', attestationObject: 'AA' } } }),
      JSON.stringify({ credential: { id: 'a', rawId: 'a', type: 'public-key', response: { clientDataJSON: 'e30', attestationObject: 'AA' } } }),
      JSON.stringify({ credential: { id: 'a', rawId: 'a', type: 'public-key', response: { clientDataJSON: 'eyJjaGFsbGVuZ2UiOjF9', attestationObject: 'AA' } } }),
      JSON.stringify({ credential: (await (await SoftAuthenticator.create()).register(await options(user))), name: '' }),
      JSON.stringify({ credential: (await (await SoftAuthenticator.create()).register(await options(user))), name: 'x'.repeat(61) }),
      JSON.stringify({ credential: (await (await SoftAuthenticator.create()).register(await options(user))), name: 'a\u0007b' }),
    ];
    for (const body of bodies) {
      const r = await call('/auth/passkeys/register', { method: 'POST', headers: h, body });
      expect(r.status, body).toBe(400);
      expect(await r.json(), body).toMatchObject({ error: 'invalid_request', error_description: expect.any(String) });
    }
    // A garbage attestation object with a real challenge: refused as unverifiable.
    const o = await options(user);
    const cd = btoa(JSON.stringify({ type: 'webauthn.create', challenge: o.challenge, origin: PUBLIC_URL })).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
    const r = await call('/auth/passkeys/register', { method: 'POST', headers: h, body: JSON.stringify({ credential: { id: 'AAAA', rawId: 'AAAA', type: 'public-key', response: { clientDataJSON: cd, attestationObject: 'oWNmbXRkbm9uZQ' } } }) });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: 'invalid_request' });
    expect(await countRows('passkeys', 'user_id = ?', user.user.id)).toBe(0);
  });
});

describe('listing, renaming and removing passkeys', () => {
  it('JSON: lists only the user’s own passkeys, renames and removes them; another user’s passkey is 404 and unchanged', async () => {
    const user = await registerUser();
    const other = await registerUser();
    const a = await addPasskey(user, 'Phone');
    const b = await addPasskey(user, 'Key');
    const theirs = await addPasskey(other, 'Theirs');
    const list = await call('/auth/passkeys', { headers: bearer(user.access_token) });
    expect(list.status).toBe(200);
    const body = await list.json<{ passkeys: { id: string; name: string }[] }>();
    expect(body.passkeys.map((p) => [p.id, p.name])).toEqual([
      [a.id, 'Phone'],
      [b.id, 'Key'],
    ]);
    expect(JSON.stringify(body)).not.toContain('public_key');

    const renamed = await call(`/auth/passkeys/${a.id}`, { method: 'PATCH', json: { name: 'My phone' }, headers: bearer(user.access_token) });
    expect(renamed.status).toBe(200);
    expect(await renamed.json()).toMatchObject({ passkey: { id: a.id, name: 'My phone' } });
    expect(await passkeyRow(a.id)).toMatchObject({ name: 'My phone' });

    for (const r of [
      await call(`/auth/passkeys/${theirs.id}`, { method: 'PATCH', json: { name: 'Mine now' }, headers: bearer(user.access_token) }),
      await call(`/auth/passkeys/${theirs.id}`, { method: 'DELETE', headers: bearer(user.access_token) }),
    ]) {
      expect(r.status).toBe(404);
      expect(await r.json()).toMatchObject({ error: 'not_found' });
    }
    expect(await passkeyRow(theirs.id)).toMatchObject({ name: 'Theirs', user_id: other.user.id });

    const removed = await call(`/auth/passkeys/${b.id}`, { method: 'DELETE', headers: bearer(user.access_token) });
    expect(removed.status).toBe(200);
    expect(await passkeyRow(b.id)).toBeNull();
    expect(await countRows('auth_events', "event = 'passkey_removed' AND user_id = ?", user.user.id)).toBe(1);
    expect((await call(`/auth/passkeys/${b.id}`, { method: 'DELETE', headers: bearer(user.access_token) })).status).toBe(404);
  });

  it('the account page’s forms rename and remove (303 back with a notice); an old sign-in cannot remove', async () => {
    const email = uniqueEmail();
    const user = await registerUser(email);
    // Signed in before the passkey exists: afterwards a password sign-in owes it as a second factor.
    const signIn = await call('/auth/login', { form: { email, password: 'correct horse battery staple' } });
    const cookies = Object.fromEntries([...setCookies(signIn)].map(([k, v]) => [k, v.value]));
    const a = await addPasskey(user, 'Phone');
    const renamed = await call(`/auth/passkeys/${a.id}/rename`, { form: { name: 'Pocket' }, cookies });
    expect(renamed.status).toBe(303);
    expect(renamed.headers.get('location')).toBe('/auth/account?done=passkey_renamed');
    expect(await passkeyRow(a.id)).toMatchObject({ name: 'Pocket' });

    const page = await call('/auth/account?done=passkey_renamed', { cookies, headers: NAV });
    expect(await page.text()).toContain('Your passkey has been renamed.');

    // A cross-site form post is refused.
    const csrf = await call(`/auth/passkeys/${a.id}/remove`, { form: {}, cookies, headers: { origin: 'https://evil.example' } });
    expect(csrf.status).toBe(403);
    expect(await passkeyRow(a.id)).not.toBeNull();

    await ageSessions(user, 601, cookies);
    const stale = await call(`/auth/passkeys/${a.id}/remove`, { form: {}, cookies });
    expect(stale.status).toBe(303);
    expect(stale.headers.get('location')).toBe('/auth/account?done=passkey_reauth');
    expect(await passkeyRow(a.id)).not.toBeNull();

    // A fresh sign-in: the password, then the passkey as the second factor (the pending state's cookie).
    const fresh = await call('/auth/login', { form: { email, password: 'correct horse battery staple' } });
    expect(fresh.headers.get('location')).toBe('/auth/mfa');
    const pendingCookies = Object.fromEntries([...setCookies(fresh)].map(([k, v]) => [k, v.value]));
    const mfaOptions = (await postJson('/auth/mfa/passkey/options', {}, { cookies: pendingCookies })).body as unknown as { challenge: string };
    const second = await call('/auth/mfa/passkey', { json: { credential: await a.assert(mfaOptions) }, cookies: pendingCookies });
    expect(second.status).toBe(303);
    const freshCookies = Object.fromEntries([...setCookies(second)].map(([k, v]) => [k, v.value]));
    const removed = await call(`/auth/passkeys/${a.id}/remove`, { form: {}, cookies: freshCookies });
    expect(removed.status).toBe(303);
    expect(removed.headers.get('location')).toBe('/auth/account?done=passkey_removed');
    expect(await passkeyRow(a.id)).toBeNull();

    // Signed out: a browser is sent to sign in.
    const anon = await call(`/auth/passkeys/${a.id}/remove`, { form: {}, headers: { ...NAV, origin: PUBLIC_URL } });
    expect(anon.status).toBe(302);
    expect(anon.headers.get('location')).toBe('/auth/login?return_to=%2Fauth%2Faccount');
  });
});

describe('the account page’s passkey section', () => {
  async function browserSession() {
    const email = uniqueEmail();
    const user = await registerUser(email);
    const signIn = await call('/auth/login', { form: { email, password: 'correct horse battery staple' } });
    return { user, cookies: Object.fromEntries([...setCookies(signIn)].map(([k, v]) => [k, v.value])) };
  }

  it('lists passkeys with rename and remove forms, and a hidden "Add a passkey" form driven by the nonce-tagged script', async () => {
    const { user, cookies } = await browserSession();
    const a = await addPasskey(user, 'Phone <b>');
    const r = await call('/auth/account', { cookies, headers: NAV });
    expect(r.status).toBe(200);
    const csp = r.headers.get('content-security-policy')!;
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeTruthy();
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await r.text();
    expect(html).toContain(`<script nonce="${nonce}" src="/auth/passkeys/client.js" defer="">`);
    expect(html).toContain('Phone &lt;b&gt;');
    expect(html).toContain(`action="/auth/passkeys/${a.id}/rename"`);
    expect(html).toContain(`action="/auth/passkeys/${a.id}/remove"`);
    // Without JavaScript the add form stays hidden (the script shows it).
    expect(html).toMatch(/<form id="passkey-add" hidden=""/);
    expect(html).toContain('data-base="/auth/passkeys"');
  });

  it('with a sign-in older than 10 minutes: no add form, a "sign in again" link instead', async () => {
    const { user, cookies } = await browserSession();
    await ageSessions(user, 601, cookies);
    const html = await (await call('/auth/account', { cookies, headers: NAV })).text();
    expect(html).not.toContain('id="passkey-add"');
    expect(html).toContain('id="passkey-reauth"');
    expect(html).toContain('You have no passkeys yet.');
  });

  it('serves the browser script as JavaScript', async () => {
    const r = await call('/auth/passkeys/client.js');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const js = await r.text();
    expect(js).toContain('navigator.credentials.create');
    expect(js).toContain('mediation');
  });

  it('PASSKEYS=disabled: no section, no script, no button; every passkey endpoint refuses', async () => {
    const env = makeEnv({ PASSKEYS: 'disabled' });
    const email = uniqueEmail();
    const user = await registerUser(email, undefined, env);
    const login = await call('/auth/login', { env, headers: NAV });
    // Only the show-password toggle's inline script remains; nothing may connect anywhere.
    expect(login.headers.get('content-security-policy')).not.toContain('connect-src');
    const html = await login.text();
    expect(html).not.toContain('passkeys/client.js');
    expect(html).not.toContain('passkey');
    expect(html).toContain('autocomplete="username"');
    const r = await postJson('/auth/passkeys/register/options', {}, { env, headers: bearer(user.access_token) });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ error: 'forbidden' });
    expect((await postJson('/auth/passkeys/login/options', {}, { env })).status).toBe(403);
  });
});

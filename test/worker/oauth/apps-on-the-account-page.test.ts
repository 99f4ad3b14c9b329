/**
 * The apps a user allowed, on the account page: listed with what they may do and since when,
 * and "Revoke" takes the consent away and ends every grant the app holds for this user (in the
 * user's object, and each grant id in KV so its access tokens stop at once), audited.
 */
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { baseEnv, call, countRows, makeEnv } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { NAV, type Jar } from '../support/second-factor-helpers';
import { sessionExec, sessionRow, sessionRows } from '../support/user-sessions-store';
import { env } from 'cloudflare:test';
import { authorizeUrl, expectCode, locationOf, navigate, signedInBrowser } from './authorize-support';

const e = makeEnv();

const userIdOf = (jar: Jar) => decodeJwt(jar['__Host-gatehouse']!).sub as string;
const sidOf = (jar: Jar) => decodeJwt(jar['__Host-gatehouse']!).sid as string;

/** Allows `client` through the consent page. */
async function allow(jar: Jar, url: string) {
  const page = await navigate(e, url, jar);
  expect(page.status).toBe(200);
  const html = await page.text();
  const field = (name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)![1]!.replaceAll('&amp;', '&').replaceAll('&#38;', '&');
  const r = await call('/auth/authorize', { env: e, cookies: jar, headers: NAV, form: { request: field('request'), consent_token: field('consent_token'), decision: 'allow' } });
  expect(r.status).toBe(303);
}

/** A grant row as the token endpoint stores it, for `clientId` on the browser's session. */
async function seedGrant(jar: Jar, clientId: string, id: string) {
  const t = Math.floor(Date.now() / 1000);
  await sessionExec(
    'INSERT INTO oauth_grants (id, session_id, client_id, scope, resource, refresh_hash, created_at, expires_at, last_used_at, revoked_at) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, NULL)',
    [id, sidOf(jar), clientId, 'openid', `hash-${id}`, t, t + 3600, t],
    userIdOf(jar),
  );
}

describe('apps on the account page', () => {
  it('lists each app allowed, by name, with what it may do and since when', async () => {
    const { client } = await seedClient({ name: 'Notebook Sync' });
    const { jar } = await signedInBrowser(e);
    const empty = await (await navigate(e, '/auth/account', jar)).text();
    expect(empty).toContain('id="no-apps"');
    await allow(jar, authorizeUrl(client, { scope: 'openid email' }));
    const html = await (await navigate(e, '/auth/account', jar)).text();
    expect(html).toContain(`data-app="${client.id}"`);
    expect(html).toContain('Notebook Sync');
    expect(html).toContain('See your email address');
    expect(html).toContain(`/auth/account/apps/${client.id}/revoke`);
  });

  it('Revoke: the consent goes, the app’s grants for this user end in the object and in KV, other apps keep theirs, and the app must ask again', async () => {
    const { client } = await seedClient();
    const { client: other } = await seedClient();
    const { jar } = await signedInBrowser(e);
    await allow(jar, authorizeUrl(client));
    await allow(jar, authorizeUrl(other));
    await seedGrant(jar, client.id, `grt_a${client.id}`);
    await seedGrant(jar, client.id, `grt_b${client.id}`);
    await seedGrant(jar, other.id, `grt_c${other.id}`);
    const userId = userIdOf(jar);

    const r = await call(`/auth/account/apps/${client.id}/revoke`, { env: e, cookies: jar, headers: NAV, method: 'POST', form: {} });
    expect(r.status).toBe(303);
    expect(locationOf(r).searchParams.get('done')).toBe('app_revoked');

    expect(await sessionRow('SELECT * FROM oauth_consents WHERE client_id = ?', [client.id], userId)).toBeNull();
    expect(await sessionRow('SELECT * FROM oauth_consents WHERE client_id = ?', [other.id], userId)).not.toBeNull();
    const grants = await sessionRows<{ id: string; revoked_at: number | null }>('SELECT id, revoked_at FROM oauth_grants ORDER BY id', [], userId);
    expect(grants.filter((g) => g.revoked_at !== null).map((g) => g.id).sort()).toEqual([`grt_a${client.id}`, `grt_b${client.id}`].sort());
    expect(grants.find((g) => g.id === `grt_c${other.id}`)!.revoked_at).toBeNull();
    // In KV itself (every isolate reads it), not only this isolate's memory.
    for (const gid of [`grt_a${client.id}`, `grt_b${client.id}`]) expect(await env.REVOKED.get(`sid:${gid}`)).toBe('1');
    expect(await env.REVOKED.get(`sid:grt_c${other.id}`)).toBeNull();
    expect(await countRows('auth_events', "event = 'oauth_consent_revoked' AND user_id = ?", userId)).toBe(1);

    // The app asks again; the other one does not.
    expect((await navigate(e, authorizeUrl(client), jar)).status).toBe(200);
    expectCode(await navigate(e, authorizeUrl(other), jar), other.redirectUris[0]!);
  });

  it('Revoke whose KV write failed, posted again, revokes the ended grants in KV before answering that nothing is left to withdraw', async () => {
    const { client } = await seedClient();
    const { jar } = await signedInBrowser(e);
    await allow(jar, authorizeUrl(client));
    await seedGrant(jar, client.id, `grt_k${client.id}`);
    const userId = userIdOf(jar);
    // KV refuses the first `sid:` write, as in an outage: the object has already ended the grant.
    let failed = 0;
    const faultyKv = new Proxy(baseEnv.REVOKED, {
      get(target, prop) {
        if (prop === 'put') {
          return async (key: string, ...rest: [string, KVNamespacePutOptions?]) => {
            if (key.startsWith('sid:') && failed++ === 0) throw new Error('KV PUT failed: 500 Internal Server Error');
            return target.put(key, ...rest);
          };
        }
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const faulty = makeEnv({ REVOKED: faultyKv });
    const first = await call(`/auth/account/apps/${client.id}/revoke`, { env: faulty, cookies: jar, headers: NAV, method: 'POST', form: {} });
    expect(first.status).toBeGreaterThanOrEqual(500);
    expect(failed).toBe(1);
    expect((await sessionRow<{ revoked_at: number | null }>('SELECT revoked_at FROM oauth_grants WHERE id = ?', [`grt_k${client.id}`], userId))!.revoked_at).not.toBeNull();
    expect(await env.REVOKED.get(`sid:grt_k${client.id}`)).toBeNull();

    const retry = await call(`/auth/account/apps/${client.id}/revoke`, { env: e, cookies: jar, headers: NAV, method: 'POST', form: {} });
    expect(retry.status).toBe(404);
    expect(await env.REVOKED.get(`sid:grt_k${client.id}`)).toBe('1');
  });

  it('an app never allowed is not found; a revoke from another site is refused and changes nothing', async () => {
    const { client } = await seedClient();
    const { jar } = await signedInBrowser(e);
    expect((await call('/auth/account/apps/cli_nobody/revoke', { env: e, cookies: jar, method: 'POST', form: {} })).status).toBe(404);
    await allow(jar, authorizeUrl(client));
    const cross = await call(`/auth/account/apps/${client.id}/revoke`, { env: e, cookies: jar, method: 'POST', form: {}, headers: { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' } });
    expect(cross.status).toBe(403);
    expect(await sessionRow('SELECT * FROM oauth_consents WHERE client_id = ?', [client.id], userIdOf(jar))).not.toBeNull();
  });
});

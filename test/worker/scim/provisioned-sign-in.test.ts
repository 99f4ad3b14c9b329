/**
 * A user the directory provisions (address verified, no password) signs in with a provider that
 * confirms the address and lands on that account; a provider that does not confirm it is refused
 * and nothing is linked; a deactivated account cannot be signed in to.
 */
import { env } from 'cloudflare:test';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { uniqueEmail } from '../support/helpers';
import { FakeOidcProvider, installFakeNetwork } from '../support/oauth-fakes';
import { sessionCookies, signIn } from '../support/oauth-helpers';
import { scim, scimEnv } from './support';

beforeAll(() => installFakeNetwork());

const identities = async (userId: string) => (await env.DB.prepare('SELECT provider FROM identities WHERE user_id = ?').bind(userId).all()).results.length;

async function provisioned(email: string): Promise<string> {
  const r = await scim('POST', '/Users', { schemas: [], userName: email, displayName: 'Provisioned Person' });
  expect(r.status).toBe(201);
  return (await r.json<{ id: string }>()).id;
}

describe('a pre-provisioned user signing in with a provider', () => {
  it('a provider that confirms the address lands on the provisioned account, even with registration closed', async () => {
    const idp = await FakeOidcProvider.create();
    const e = scimEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret, REGISTRATION: 'closed' });
    const email = uniqueEmail('prov');
    const id = await provisioned(email);
    idp.user = { sub: `sub-${crypto.randomUUID()}`, email, email_verified: true, name: 'From the IdP' };
    const r = await signIn('oidc', idp, e);
    expect(r.status, await r.clone().text()).toBe(303);
    expect(decodeJwt(sessionCookies(r).access).sub).toBe(id);
    expect(await identities(id)).toBe(1);
  });

  it('a provider that does not confirm the address is refused, and nothing is linked', async () => {
    const idp = await FakeOidcProvider.create();
    const e = scimEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret });
    const email = uniqueEmail('unconfirmed');
    const id = await provisioned(email);
    idp.user = { sub: `sub-${crypto.randomUUID()}`, email, email_verified: false, name: 'Claimant' };
    const r = await signIn('oidc', idp, e);
    expect(r.status).not.toBe(303);
    expect(r.headers.get('set-cookie') ?? '').not.toContain('__Host-gatehouse=');
    expect(await identities(id)).toBe(0);
  });

  it('an account the directory deactivated cannot be signed in to', async () => {
    const idp = await FakeOidcProvider.create();
    const e = scimEnv({ OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: idp.clientId, OIDC_CLIENT_SECRET: idp.clientSecret });
    const email = uniqueEmail('inactive');
    const r0 = await scim('POST', '/Users', { schemas: [], userName: email, active: false });
    expect(r0.status).toBe(201);
    idp.user = { sub: `sub-${crypto.randomUUID()}`, email, email_verified: true, name: 'Inactive' };
    const r = await signIn('oidc', idp, e);
    expect(r.status).not.toBe(303);
    expect(r.headers.get('set-cookie') ?? '').not.toContain('__Host-gatehouse=');
  });
});

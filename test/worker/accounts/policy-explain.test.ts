/**
 * `GET /auth/admin/explain`: for an admin, which route a request would match and which policy
 * rule would allow or refuse it, evaluated with the user's current directory record and last
 * session; everyone else is refused as on every admin endpoint.
 */
import { describe, expect, it } from 'vitest';
import { baseEnv, bearer, call, registerUser, signIn, uniqueEmail } from '../support/helpers';
import { proxyEnv } from '../support/proxy-helpers';

const env = proxyEnv([
  {
    path: '/ops',
    origin: 'https://ops.internal.example',
    auth: 'required',
    policy: {
      allow: [{ roles: ['ops'] }, { groups: ['eng'], method: ['GET'] }],
      deny: [{ path: ['/admin/**'], not: { roles: ['admin'] } }, { country: ['RU'] }],
      external: 'service:DECIDER',
    },
    require: ['mfa'],
  },
  { path: '/open', origin: 'https://open.internal.example', auth: 'public' },
  { path: '/app', origin: 'https://app.internal.example', auth: 'required' },
], {}, { OIDC_ISSUER: 'https://idp.example.com', OIDC_CLIENT_ID: 'gatehouse', TOKEN_ENCRYPTION_KEY: 'k'.repeat(20) + 'an-encryption-secret-for-tests' });

async function setRoles(userId: string, roles: string[]) {
  await baseEnv.DB.prepare('UPDATE users SET roles = ? WHERE id = ?').bind(JSON.stringify(roles), userId).run();
}

async function admin(): Promise<string> {
  const a = await registerUser(undefined, undefined, env);
  await setRoles(a.user.id, ['admin']);
  return a.access_token;
}

const explain = (token: string, query: Record<string, string>) => call(`/auth/admin/explain?${new URLSearchParams(query)}`, { env, headers: bearer(token) });

describe('explaining a decision', () => {
  it('names the route and the rule, with the user\'s current roles and last session', async () => {
    const token = await admin();
    const email = uniqueEmail('explained');
    const target = await registerUser(email, undefined, env);
    // A role granted now counts, though the user's token does not carry it yet.
    await setRoles(target.user.id, ['ops']);
    const r = await explain(token, { user: email, url: 'https://gate.example.com/ops/deploy?x=1', method: 'post', country: 'de' });
    expect(r.status).toBe(200);
    const body = (await r.json()) as Record<string, any>;
    expect(body).toMatchObject({
      request: { method: 'POST', country: 'DE', ip: null },
      route: { path: '/ops', auth: 'required' },
      decision: 'allow',
      rule: 'allow[0]',
      step_up: { missing: ['mfa'] },
      external: { binding: 'DECIDER', asked: false },
      identity: { roles: ['ops'], groups: [], session: { amr: ['pwd'] } },
    });
    // A password sign-in brings no provider groups: nobody vouches for any (not "in none").
    expect(body.identity.groups_from).toMatch(/^unknown \(the last used session has no provider groups/);
  });

  it('names the deny rule that refuses, and "no allow matched"; by user id too', async () => {
    const token = await admin();
    const target = await registerUser(undefined, undefined, env);
    await setRoles(target.user.id, ['ops']);
    const denied = await explain(token, { user: target.user.id, url: '/ops/admin/x', country: 'DE' });
    expect(await denied.json()).toMatchObject({ decision: 'deny', rule: 'deny[0]', step_up: null, external: null });
    const country = await explain(token, { user: target.user.id, url: '/ops/x', country: 'RU' });
    expect(await country.json()).toMatchObject({ decision: 'deny', rule: 'deny[1]' });
    // No country given: unknown, and a deny on it refuses (as it would where the edge gave none).
    const unknown = await explain(token, { user: target.user.id, url: '/ops/x' });
    expect(await unknown.json()).toMatchObject({ request: { country: null }, decision: 'deny', rule: 'deny[1]' });
    await setRoles(target.user.id, []);
    const none = await explain(token, { user: target.user.id, url: '/ops/x', country: 'DE' });
    expect(await none.json()).toMatchObject({ decision: 'deny', rule: 'no allow matched' });
  });

  it('groups given in the query are evaluated, and said to come from there', async () => {
    const token = await admin();
    const target = await registerUser(undefined, undefined, env);
    const r = await explain(token, { user: target.user.id, url: '/ops/x', country: 'DE', groups: 'eng, sales' });
    expect(await r.json()).toMatchObject({ decision: 'allow', rule: 'allow[1]', identity: { groups: ['eng', 'sales'], groups_from: 'the groups parameter' } });
  });

  it('public routes, routes without a policy, unmatched paths and the gateway\'s own', async () => {
    const token = await admin();
    const target = await registerUser(undefined, undefined, env);
    const answers = [];
    for (const url of ['/open/x', '/app/x', '/nowhere', '/auth/me']) answers.push(await (await explain(token, { user: target.user.id, url })).json());
    expect(answers.map((a: any) => [a.route?.path ?? null, a.decision, a.rule])).toEqual([
      ['/open', 'allow', 'public route'],
      ['/app', 'allow', 'no policy: any signed-in user'],
      [null, 'deny', 'no route matches (404)'],
      [null, 'not proxied', "the gateway's own endpoint"],
    ]);
  });

  it('a user with no live session is evaluated with no sign-in methods', async () => {
    const token = await admin();
    const target = await registerUser(undefined, undefined, env);
    await setRoles(target.user.id, ['ops']);
    await call('/auth/logout', { env, method: 'POST', headers: bearer(target.access_token) });
    const body = (await (await explain(token, { user: target.user.id, url: '/ops/x', country: 'DE' })).json()) as Record<string, any>;
    expect(body.identity.session).toBeNull();
    expect(body).toMatchObject({ decision: 'allow', step_up: { missing: ['mfa'] } });
  });

  it('bad input: 400 naming the parameter; an unknown user 404', async () => {
    const token = await admin();
    const target = await registerUser(undefined, undefined, env);
    for (const [query, field] of [
      [{ url: '/ops/x' }, 'user'],
      [{ user: target.user.id }, 'url'],
      [{ user: target.user.id, url: '/ops/x', ip: '10.0.0.300' }, 'ip'],
      [{ user: target.user.id, url: '/ops/x', country: 'Germany' }, 'country'],
      [{ user: target.user.id, url: '/ops/x', method: 'GE T' }, 'method'],
    ] as const) {
      const r = await explain(token, query);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error_description: string }).error_description).toContain(`"${field}"`);
    }
    expect((await explain(token, { user: 'nobody@example.com', url: '/ops/x' })).status).toBe(404);
  });
});

describe('who may ask', () => {
  it('a signed-in non-admin gets 403, no token 401', async () => {
    const someone = await registerUser(undefined, undefined, env);
    const r = await explain(someone.access_token, { user: someone.user.id, url: '/ops/x' });
    expect(r.status).toBe(403);
    expect(await r.json()).toMatchObject({ error: 'forbidden' });
    expect((await call(`/auth/admin/explain?user=${someone.user.id}&url=/ops/x`, { env })).status).toBe(401);
  });

  it('the admin\'s question is audited', async () => {
    const token = await admin();
    const target = await signIn((await registerUser(undefined, undefined, env)).user.email, undefined, env);
    expect((await explain(token, { user: target.user.id, url: '/ops/x' })).status).toBe(200);
    const row = await baseEnv.DB.prepare("SELECT detail FROM auth_events WHERE event = 'admin_policy_explained' AND user_id = ?").bind(target.user.id).first<{ detail: string }>();
    expect(JSON.parse(row!.detail)).toMatchObject({ path: '/ops/x', method: 'GET' });
  });
});

/**
 * Route policies in forward-auth (`GET /auth/verify`): the method and path come from the
 * headers the proxy in front sets; the client's IP and country are unknown there (the request
 * comes from the proxy, and a header naming the client's could be the client's own), so a rule
 * that needs them fails closed: an allow rule does not hold, a deny rule refuses.
 */
import { describe, expect, it } from 'vitest';
import { bearer, call, registerUser, uniqueEmail } from '../support/helpers';
import { promote, proxyEnv } from '../support/proxy-helpers';

const env = proxyEnv([
  {
    path: '/wiki',
    origin: 'https://wiki.internal.example',
    auth: 'required',
    policy: { allow: [{ roles: ['editor'] }, { roles: ['reader'], method: ['GET'], path: ['/pages/**'] }], deny: [{ path: ['/admin/**'] }] },
  },
  { path: '/office', origin: 'https://office.internal.example', auth: 'required', policy: { allow: [{ roles: ['editor'], ip: ['203.0.113.0/24'] }] } },
  { path: '/geo', origin: 'https://geo.internal.example', auth: 'required', policy: { allow: [{ roles: ['editor'] }], deny: [{ country: ['RU'] }] } },
]);

async function withRoles(roles: string[]): Promise<string> {
  const email = uniqueEmail('fa');
  await registerUser(email, undefined, env);
  return promote(env, email, { roles });
}

const verify = (token: string, headers: Record<string, string>) => call('/auth/verify', { env, headers: { ...bearer(token), ...headers } });

describe('forward-auth policy facts', () => {
  it('method and path come from the forwarded headers', async () => {
    const reader = await withRoles(['reader']);
    expect((await verify(reader, { 'x-forwarded-uri': '/wiki/pages/home', 'x-forwarded-method': 'GET' })).status).toBe(200);
    expect((await verify(reader, { 'x-original-uri': '/wiki/pages/home', 'x-original-method': 'get' })).status).toBe(200);
    expect((await verify(reader, { 'x-forwarded-uri': '/wiki/pages/home', 'x-forwarded-method': 'POST' })).status).toBe(403);
    expect((await verify(reader, { 'x-forwarded-uri': '/wiki/other', 'x-forwarded-method': 'GET' })).status).toBe(403);
  });

  it('without a forwarded method, a rule on the method cannot hold', async () => {
    const reader = await withRoles(['reader']);
    expect((await verify(reader, { 'x-forwarded-uri': '/wiki/pages/home' })).status).toBe(403);
  });

  it('deny wins on the forwarded path, whatever its case or encoding', async () => {
    const editor = await withRoles(['editor']);
    expect((await verify(editor, { 'x-forwarded-uri': '/wiki/pages/x' })).status).toBe(200);
    for (const uri of ['/wiki/admin/x', '/wiki/Admin/x', '/wiki/%61dmin/x', '/wiki/pages/../admin/x']) {
      const r = await verify(editor, { 'x-forwarded-uri': uri });
      expect(r.status, uri).toBe(403);
      expect(await r.json()).toMatchObject({ error: 'forbidden' });
    }
  });

  it('the client IP is unknown: the verify request\'s own CF-Connecting-IP and X-Forwarded-For are not it', async () => {
    const editor = await withRoles(['editor']);
    const r = await verify(editor, { 'x-forwarded-uri': '/office/x', 'cf-connecting-ip': '203.0.113.5', 'x-forwarded-for': '203.0.113.5', 'x-real-ip': '203.0.113.5' });
    expect(r.status).toBe(403);
  });

  it('the country is unknown: a country deny refuses', async () => {
    const editor = await withRoles(['editor']);
    expect((await verify(editor, { 'x-forwarded-uri': '/geo/x' })).status).toBe(403);
  });
});

describe('forward-auth: a client\'s copy of the other URI header', () => {
  // nginx sets X-Original-URI and passes the client's X-Forwarded-Uri through (Traefik the other
  // way round): two URIs under one route that name different paths mean one is the client's.
  it('two forwarded URIs naming different paths under one route are refused, not the laxer one believed', async () => {
    const editor = await withRoles(['editor']);
    const r = await verify(editor, { 'x-original-uri': '/wiki/admin/x', 'x-forwarded-uri': '/wiki/pages/x' });
    expect(r.status).toBe(403);
    expect(await r.json()).toMatchObject({ error: 'forbidden' });
    const swapped = await verify(editor, { 'x-forwarded-uri': '/wiki/admin/x', 'x-original-uri': '/wiki/pages/x' });
    expect(swapped.status).toBe(403);
  });

  it('two forwarded URIs naming the same path (query and dot segments aside) still pass', async () => {
    const editor = await withRoles(['editor']);
    expect((await verify(editor, { 'x-original-uri': '/wiki/pages/x?a=1', 'x-forwarded-uri': '/wiki/pages/./x?b=2' })).status).toBe(200);
  });
});

describe('forward-auth: what the external decision is told', () => {
  it('the host is unknown (null), not the X-Forwarded-Host a client can send through nginx', async () => {
    const asked: Record<string, any>[] = [];
    const decider = {
      async fetch(input: RequestInfo | URL, init?: RequestInit) {
        asked.push(await new Request(input, init).json());
        return Response.json({ allow: true });
      },
    };
    const extEnv = proxyEnv([{ path: '/ext', origin: 'https://ext.internal.example', auth: 'required', policy: { allow: [{ roles: ['editor'] }], external: 'service:DECIDER' } }], { DECIDER: decider });
    const email = uniqueEmail('fa-ext');
    await registerUser(email, undefined, extEnv);
    const editor = await promote(extEnv, email, { roles: ['editor'] });
    const r = await call('/auth/verify', { env: extEnv, headers: { ...bearer(editor), 'x-original-uri': '/ext/x', 'x-original-method': 'GET', 'x-forwarded-host': 'public.example.com' } });
    expect(r.status).toBe(200);
    expect(asked).toHaveLength(1);
    expect(asked[0]!.request).toEqual({ method: 'GET', host: null, path: '/ext/x', ip: null, country: null });
  });
});

/**
 * Interop: nginx `auth_request` in front of an origin, with a group rule. A real OpenID Connect
 * server (the dev one) gives each user groups; a real `wrangler dev` admits `/eng` to the group
 * `eng` only. A member passes nginx with X-Auth-Groups copied from the gateway's answer (a name
 * holding a comma percent-encoded, the assertion carrying it as sent); a non-member is refused
 * by nginx (403) and the origin is never asked. A user removed from `eng` at the provider keeps
 * it until the access token is refreshed once the groups are GROUPS_MAX_AGE (here 30 s) old: the
 * refresh re-reads them from the server (refresh grant, new ID token) and nginx refuses.
 * Skips only when nginx is not installed, and never in CI (there a missing nginx fails the run).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevOidcServer } from '../../scripts/dev/oidc-server.mjs';
import { Client, freePort, startGateway, type Gateway } from './harness';
import { nginxBin, startNginx, type Nginx } from './interop/nginx';
import { missingPeer } from './interop/processes';
import { startOrigin, type Origin } from './interop/origin';

const GROUPS_MAX_AGE = 30;

describe.skipIf(missingPeer('nginx', nginxBin !== null))('nginx auth_request with a group rule', () => {
  let gw: Gateway;
  let idp: Awaited<ReturnType<typeof startDevOidcServer>>;
  let nginx: Nginx;
  let origin: Origin;
  const seen: IncomingHttpHeaders[] = [];
  let who: Record<string, unknown> = {};

  beforeAll(async () => {
    idp = await startDevOidcServer({ port: await freePort(), claims: () => who });
    gw = await startGateway({
      vars: {
        OIDC_ISSUER: idp.issuer,
        OIDC_CLIENT_ID: 'gatehouse-nginx-groups',
        OIDC_CLIENT_SECRET: 'nginx-groups-secret',
        GROUPS_MAX_AGE: String(GROUPS_MAX_AGE),
        ROUTES: JSON.stringify([{ path: '/eng', origin: 'http://127.0.0.1:9', auth: 'required', allow: { groups: ['eng'] } }]),
      },
    });
    origin = await startOrigin((req, res) => {
      seen.push(req.headers);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url }));
    });
    nginx = await startNginx(gw.port, origin.port);
  });
  afterAll(async () => {
    await nginx?.stop();
    await origin?.stop();
    await gw?.stop();
    await idp?.stop();
  });

  /** Signs in through the OpenID Connect server as someone in `groups`; returns the session's cookie header. */
  async function signedIn(groups: string[]): Promise<string> {
    return (await signedInClient(groups)).cookieHeader();
  }

  async function signedInClient(groups: string[]): Promise<Client> {
    const stamp = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    who = { sub: `nginx-${stamp}`, email: `nginx-${stamp}@example.com`, email_verified: true, name: 'Nginx Groups', groups };
    const c = new Client(gw.url);
    const login = await c.fetch('/auth/login/oidc');
    expect(login.status, gw.logs().slice(-4000)).toBe(302);
    const atProvider = await fetch(login.headers.get('location')!, { redirect: 'manual' });
    const back = new URL(atProvider.headers.get('location')!);
    const done = await c.fetch(`${back.pathname}${back.search}`);
    expect(done.status, gw.logs().slice(-4000)).toBe(303);
    return c;
  }

  it('a member of eng passes, with X-Auth-Groups and the assertion’s groups', async () => {
    seen.length = 0;
    const cookie = await signedIn(['staff', 'eng', 'R&D, Europe']);
    const r = await fetch(`${nginx.base}/eng/board`, { headers: { cookie, 'x-auth-groups': 'spoofed' } });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ path: '/eng/board' });
    expect(seen).toHaveLength(1);
    const h = seen[0]!;
    expect(h['x-auth-groups']).toBe('staff,eng,R&D%2C%20Europe');
    expect((h['x-auth-groups'] as string).split(',').map(decodeURIComponent)).toEqual(['staff', 'eng', 'R&D, Europe']);
    expect(decodeJwt(h['x-auth-assertion'] as string).groups).toEqual(['staff', 'eng', 'R&D, Europe']);
  });

  it('someone outside eng is refused by nginx; the origin is never asked', async () => {
    seen.length = 0;
    const cookie = await signedIn(['staff', 'eng-alumni']);
    const r = await fetch(`${nginx.base}/eng/board`, { headers: { cookie, 'x-auth-groups': 'eng' } });
    expect(r.status).toBe(403);
    expect(seen).toHaveLength(0);
  });

  it('removed from eng at the provider: kept until a refresh after GROUPS_MAX_AGE re-reads the groups, then refused', { timeout: 90_000 }, async () => {
    const c = await signedInClient(['eng']);
    who = { ...who, groups: ['staff'] };
    const before = await fetch(`${nginx.base}/eng/board`, { headers: { cookie: c.cookieHeader() } });
    expect(before.status).toBe(200);
    await new Promise((r) => setTimeout(r, (GROUPS_MAX_AGE + 2) * 1000));
    // The access token minted at sign-in still carries eng until it expires (the bound's second part).
    expect((await fetch(`${nginx.base}/eng/board`, { headers: { cookie: c.cookieHeader() } })).status).toBe(200);
    const refreshed = await c.fetch('/auth/refresh', { method: 'POST', headers: { origin: gw.url } });
    expect(refreshed.status, gw.logs().slice(-4000)).toBe(200);
    // Re-read, not merely dropped: the token carries the groups the provider says now.
    const me = (await (await c.fetch('/auth/me')).json()) as { user: { groups: string[] } };
    expect(me.user.groups).toEqual(['staff']);
    const after = await fetch(`${nginx.base}/eng/board`, { headers: { cookie: c.cookieHeader() } });
    expect(after.status).toBe(403);
  });
});

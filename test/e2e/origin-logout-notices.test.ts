/**
 * Logout notices end to end (README "Revocation"): a real `wrangler dev` with its local queue, and
 * a Node origin written as README's example (a form post of `logout_token`, checked with
 * `verifyGatehouseLogoutToken` of the built package `@gatehouse/verify`, imported by its name as
 * an origin does: test/e2e/global-setup.ts links it; its `jti` refused a second time). A sign-out
 * reaches the origin as a verified notice for the session its assertions named, and answers at
 * once even while another origin's target never answers.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyGatehouseLogoutToken, type GatehouseLogout } from '@gatehouse/verify';
import { Client, freePort, startGateway, type Gateway } from './harness';

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('a Node origin told of the end of a gateway session', () => {
  let gw: Gateway;
  let origin: Server;
  let originUrl: string;
  let silent: Server;
  /** What the origin made of each notice. */
  const notices: ({ ok: true; logout: GatehouseLogout } | { ok: false; error: string })[] = [];
  const seenJti = new Map<string, number>();
  const assertions: string[] = [];

  beforeAll(async () => {
    const [port, silentPort] = [await freePort(), await freePort()];
    originUrl = `http://127.0.0.1:${port}`;
    let jwksUrl = '';
    origin = createServer(async (req, res) => {
      if (req.method === 'POST' && req.url === '/backchannel-logout') {
        // As README's Express example: the form's logout_token, verified, its jti used once.
        try {
          const token = new URLSearchParams(await body(req)).get('logout_token') ?? '';
          const logout = await verifyGatehouseLogoutToken(token, { jwksUrl, audience: `${originUrl}/backchannel-logout` });
          if (seenJti.has(logout.jti)) throw new Error('jti replayed');
          seenJti.set(logout.jti, logout.expiresAt);
          notices.push({ ok: true, logout });
          res.writeHead(200).end();
        } catch (e) {
          notices.push({ ok: false, error: e instanceof Error ? e.message : String(e) });
          res.writeHead(400).end();
        }
        return;
      }
      assertions.push(String(req.headers['x-auth-assertion'] ?? ''));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('page');
    });
    await new Promise<void>((resolve) => origin.listen(port, '127.0.0.1', resolve));
    // A target that takes the request and never answers.
    silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(silentPort, '127.0.0.1', resolve));
    const routes = [
      { path: '/node', origin: originUrl, auth: 'required', strip_prefix: true, logout_notify: `${originUrl}/backchannel-logout` },
      { path: '/silent', origin: `http://127.0.0.1:${silentPort}`, auth: 'required', logout_notify: `http://127.0.0.1:${silentPort}/logout` },
    ];
    gw = await startGateway({ vars: { ROUTES: JSON.stringify(routes) } });
    jwksUrl = `${gw.url}/.well-known/jwks.json`;
  });
  afterAll(async () => {
    await gw?.stop();
    origin?.closeAllConnections();
    silent?.closeAllConnections();
    origin?.close();
    silent?.close();
  });

  it('a sign-out answers at once and the origin receives a notice the helper verifies, for the sid of its assertions', async () => {
    const c = new Client(gw.url);
    const reg = await c.fetch('/auth/register', { method: 'POST', json: { email: `node-out-${Date.now()}@example.com`, password: 'a notice passphrase, long enough' } });
    expect(reg.status, gw.logs().slice(-4000)).toBe(201);
    const { access_token, user } = (await reg.json()) as { access_token: string; user: { id: string } };
    expect((await c.fetch('/node/page', { headers: { authorization: `Bearer ${access_token}` } })).status).toBe(200);
    const sid = (JSON.parse(Buffer.from(assertions.at(-1)!.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid;

    const started = Date.now();
    const out = await c.fetch('/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${access_token}` } });
    expect(out.status).toBe(200);
    // The silent target holds its notice for its full deadline; the sign-out never waits for it.
    expect(Date.now() - started).toBeLessThan(2000);

    await expect.poll(() => notices.length, { timeout: 20_000, interval: 100 }).toBe(1);
    const [notice] = notices;
    expect(notice, JSON.stringify(notice)).toMatchObject({ ok: true, logout: { userId: user.id, sessionId: sid } });
  });
});

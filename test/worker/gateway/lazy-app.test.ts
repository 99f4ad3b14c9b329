/**
 * middleware/lazy-app.ts: an app imported on first use behaves like one mounted directly
 * (context variables both ways, errors to the main app's handler, HEAD, the logged route), and
 * a failed import is retried rather than cached. The gateway's own endpoints all go through it
 * (app.ts -> app-lazy.ts), so the rest of the suite covers it end to end; these pin down the
 * mechanism itself.
 */
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../../../src/env';
import { ApiError } from '../../../src/http/errors';
import { errorHandler } from '../../../src/middleware/error-handler';
import { lazyApp } from '../../../src/middleware/lazy-app';
import { call } from '../support/helpers';

function inner(): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .get('/x/:id', (c) => {
      // Sees what the main app set before it, and sets something the main app reads after.
      c.set('policy', `seen:${c.get('requestId')}`);
      return c.json({ id: c.req.param('id'), requestId: c.get('requestId') });
    })
    .get('/boom', () => {
      throw new ApiError('not_found', 'inner failure');
    })
    .post('/logout', (c) => {
      // As a logout whose store fails: the cookies are cleared before the error.
      c.header('set-cookie', 'a=; Max-Age=0', { append: true });
      c.header('set-cookie', 'b=; Max-Age=0', { append: true });
      c.header('x-prepared', 'yes');
      throw new ApiError('unavailable', 'store down');
    })
    .all('*', (c) => c.json({ fallback: true }, 404));
}

function outer(load: () => Promise<Hono<AppEnv>>) {
  const seen: { policy?: string; lazyRoute?: string; error?: string } = {};
  const app = new Hono<AppEnv>();
  app.onError((e, c) => {
    seen.error = e.message;
    return c.json({ handledBy: 'main' }, 418);
  });
  app.use('*', async (c, next) => {
    c.set('requestId', 'req-1');
    await next();
    seen.policy = c.get('policy');
    seen.lazyRoute = c.get('lazyRoute');
  });
  app.all('*', lazyApp(load));
  return { app, seen };
}

describe('lazyApp', () => {
  it("runs the loaded app with the main app's variables and hands its own back, with the route it matched", async () => {
    const { app, seen } = outer(async () => inner());
    const r = await app.request('/x/42');
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ id: '42', requestId: 'req-1' });
    expect(seen.policy).toBe('seen:req-1');
    expect(seen.lazyRoute).toBe('/x/:id');
  });

  it("sends the loaded app's errors to the main app's error handler", async () => {
    const { app, seen } = outer(async () => inner());
    const r = await app.request('/boom');
    expect(r.status).toBe(418);
    expect(await r.json()).toEqual({ handledBy: 'main' });
    expect(seen.error).toBe('inner failure');
  });

  it("keeps the headers a failing handler prepared (cleared cookies) in the main app's error response", async () => {
    const app = new Hono<AppEnv>();
    app.onError(errorHandler);
    // As in app.ts, middleware runs first (hono merges prepared headers only through it).
    app.use('*', async (_c, next) => next());
    app.all('*', lazyApp(async () => inner()));
    const r = await app.request('/logout', { method: 'POST' });
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ error: 'unavailable' });
    expect(r.headers.getSetCookie()).toEqual(['a=; Max-Age=0', 'b=; Max-Age=0']);
    expect(r.headers.get('x-prepared')).toBe('yes');
  });

  it('answers HEAD with the GET route and no body', async () => {
    const { app } = outer(async () => inner());
    const r = await app.request('/x/7', { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('');
  });

  it('imports once, and tries again after a failed import instead of failing for good', async () => {
    let attempts = 0;
    const { app, seen } = outer(async () => {
      attempts += 1;
      if (attempts === 1) throw new Error('chunk failed to load');
      return inner();
    });
    expect((await app.request('/x/1')).status).toBe(418);
    expect(seen.error).toBe('chunk failed to load');
    expect((await app.request('/x/2')).status).toBe(200);
    expect((await app.request('/x/3')).status).toBe(200);
    expect(attempts).toBe(2);
  });
});

describe('the gateway through it', () => {
  it('a lazily served endpoint keeps the gateway headers and JSON errors of the main app', async () => {
    const r = await call('/auth/me', { headers: { accept: 'application/json' } });
    expect(r.status).toBe(401);
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    expect(r.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await r.json()).toMatchObject({ error: 'invalid_token' });
  });
});

/**
 * An origin behind an app host (README "Hosts") cannot set the gateway's cookies there: not this
 * host's access cookie (someone else's session pushed into the browser: login CSRF), nor the
 * single sign-on state (to pair a code of the attacker's with it). Besides the plain names, a
 * nameless cookie (`Set-Cookie: =__Host-gatehouse=…`) is dropped: a browser that stores it sends
 * it back as `__Host-gatehouse=…`, which reads exactly like ours.
 */
import { describe, expect, it } from 'vitest';
import { call } from '../support/helpers';
import { proxyEnv, recordingOrigin } from '../support/proxy-helpers';

const planted = [
  '__Host-gatehouse-sso=AAAAAAAAAAAAAAAAAAAAAB; Path=/; Secure; HttpOnly; SameSite=Lax',
  '=__Host-gatehouse-sso=AAAAAAAAAAAAAAAAAAAAAB; Path=/; Secure',
  '=__Host-gatehouse=planted; Path=/; Secure',
  ' =__Secure-gatehouse-refresh=planted; Path=/auth; Secure',
  '=__Host-gatehouse-mfa=planted; Path=/; Secure',
];

describe('an app host’s origin cannot set the gateway’s cookies', () => {
  it.each(planted)('Set-Cookie %s is dropped; the origin’s own cookie stays', async (line) => {
    const origin = recordingOrigin(() => {
      const headers = new Headers();
      headers.append('set-cookie', line);
      headers.append('set-cookie', 'app=1; Path=/');
      return new Response('ok', { headers });
    });
    const env = proxyEnv([{ host: 'app.example.com', path: '/', origin: 'service:ORIGIN', auth: 'public' }], { ORIGIN: origin });
    const r = await call('https://app.example.com/page', { env });
    expect(r.status).toBe(200);
    expect(r.headers.getSetCookie()).toEqual(['app=1; Path=/']);
  });
});

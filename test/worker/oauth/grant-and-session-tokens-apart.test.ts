/**
 * Grant tokens and session tokens are both `at+jwt` of the gateway's keys, and on an app host
 * whose `/` is a protected resource they share the `aud` (that host's origin: the resource's
 * identifier, and the audience of the host's own session cookie). Each verifier therefore also
 * refuses the other kind by its claims: a token naming a client (`client_id`) is never a session
 * token, whatever else it carries (a session token, lacking `client_id` and `cep`, is never a
 * grant token: protected-resources.test.ts).
 */
import { decodeJwt, importJWK, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { bearer, call, signedInUser, testKey } from '../support/helpers';
import { proxyEnv, recordingOrigin } from '../support/proxy-helpers';

const origin = recordingOrigin();
const HOST = 'https://tools.example.net';
const env = proxyEnv(
  [
    { host: 'tools.example.net', path: '/', origin: 'service:O', auth: 'required', resource: 'mcp' },
    { host: 'tools.example.net', path: '/app', origin: 'service:O', auth: 'required' },
  ],
  { O: origin },
);

/** A token of ours with `claims`, for `aud`. */
async function signed(claims: Record<string, unknown>): Promise<string> {
  const key = await importJWK(testKey, 'ES256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: testKey.kid!, typ: 'at+jwt' }).sign(key);
}

describe('a token naming a client on the app host whose / is a protected resource', () => {
  it('is refused where the host\'s session token is taken, though it carries every claim of one and its audience', async () => {
    const person = await signedInUser({ verified: true }, env);
    const session = decodeJwt(person.access_token);
    const own = await signed({ ...session, aud: HOST });
    // The host's own session token (as its cookie holds one) passes; the same with client_id does not.
    expect((await call(`${HOST}/app/x`, { env, headers: bearer(own) })).status).toBe(200);
    const named = await signed({ ...session, aud: HOST, client_id: 'cli_someapp', cep: 'e1', scope: '' });
    const r = await call(`${HOST}/app/x`, { env, headers: bearer(named) });
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ error: 'invalid_token' });
  });
});

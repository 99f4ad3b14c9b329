/**
 * The proxy configurations README gives for forward-auth (nginx, Traefik, Caddy) overwrite every
 * identity header `/auth/verify` can answer: a header the proxy does not set from the answer is
 * passed on as the client sent it, so an origin behind such a proxy would read a client's own
 * `X-Auth-Client-Id` (posing as a service, or as the OAuth client acting for a user) or
 * `X-Auth-Amr` (posing as a second factor).
 */
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { keyringFromJwks } from '../../../src/keys/keyring';
import { issueGrantToken } from '../../../src/tokens/grant-token';
import { bearer, call, PUBLIC_URL, signedInUser, testKey } from '../support/helpers';
import { seedClient } from '../support/oauth-clients';
import { proxyEnv } from '../support/proxy-helpers';
import { serviceClient, serviceToken } from '../support/service-clients';

const raw = (files: Record<string, string>) => Object.values(files)[0] ?? '';
const README = raw(import.meta.glob('../../../README.md', { query: '?raw', import: 'default', eager: true }) as Record<string, string>);

/** The README's fenced blocks in a language. */
const blocks = (lang: string) => [...README.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```', 'gm'))].map((m) => m[1]!);

const lower = (names: Iterable<string>) => new Set([...names].map((n) => n.toLowerCase()));

/** The headers each README snippet sets on the request from forward-auth's answer. */
function snippetHeaders(): Record<'nginx' | 'traefik' | 'caddy', Set<string>> {
  const nginx = blocks('nginx').find((b) => b.includes('auth_request'))!;
  const traefik = blocks('yaml').find((b) => b.includes('forwardAuth'))!;
  const caddy = blocks('caddyfile').find((b) => b.includes('forward_auth'))!;
  return {
    nginx: lower([...nginx.matchAll(/proxy_set_header\s+(X-Auth-[\w-]+)/g)].map((m) => m[1]!)),
    traefik: lower(/authResponseHeaders:\s*\[([^\]]*)\]/.exec(traefik)![1]!.split(',').map((s) => s.trim())),
    caddy: lower(/copy_headers\s+([^\n]*)/.exec(caddy)![1]!.trim().split(/\s+/)),
  };
}

const env = proxyEnv([
  { path: '/api', origin: 'https://api.internal.example', auth: 'required', policy: { allow: [{ caller: ['service'] }] } },
  { path: '/mcp', origin: 'https://mcp.internal.example', auth: 'required', resource: 'mcp' },
  { path: '/wiki', origin: 'https://wiki.internal.example', auth: 'required' },
]);
const keyring = await keyringFromJwks({ keys: [testKey] });

/** The `X-Auth-*` names of an answer of /auth/verify. */
async function answered(headers: Record<string, string>, uri: string): Promise<string[]> {
  const r = await call('/auth/verify', { env, headers: { ...headers, 'x-forwarded-uri': uri } });
  expect(r.status, uri).toBe(200);
  return [...r.headers.keys()].filter((h) => h.startsWith('x-auth-'));
}

describe('the README\'s forward-auth proxy snippets', () => {
  it('overwrite every identity header forward-auth answers: a person\'s, a person\'s at a protected resource, a service\'s', async () => {
    const person = await signedInUser({ verified: true }, env);
    const { sub, sid } = decodeJwt<{ sub: string; sid: string }>(person.access_token);
    const { client: app } = await seedClient({ kind: 'public', authMethod: 'none', redirectUris: ['http://127.0.0.1:1/cb'] });
    const grant = await issueGrantToken(keyring, {
      issuer: PUBLIC_URL, audience: `${PUBLIC_URL}/mcp`, subject: sub, sessionId: sid, clientId: app.id, clientEpoch: app.tokenEpoch,
      scope: 'openid', ttlSeconds: 600, authTime: Math.floor(Date.now() / 1000), amr: ['pwd'],
    });
    const { client, secret } = await serviceClient([`${PUBLIC_URL}/api`]);
    const names = new Set([
      ...(await answered(bearer(person.access_token), '/wiki/home')),
      ...(await answered(bearer(grant.token), '/mcp')),
      ...(await answered(bearer(await serviceToken(env, client, secret, `${PUBLIC_URL}/api`)), '/api/export')),
    ]);
    expect(names).toContain('x-auth-client-id');
    for (const [proxy, set] of Object.entries(snippetHeaders())) {
      expect([...names].filter((n) => !set.has(n)), proxy).toEqual([]);
    }
  });
});

/**
 * A route's external decision (`policy.external = "service:NAME"`): asked over the service
 * binding only after the route's own rules allow, with the identity and a summary of the
 * request; its answer is kept a few seconds per token and request, in a bounded cache; a
 * refusal, a failure, a timeout, a malformed answer or a missing binding is a bare 403.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AuthUser, Env } from '../../../src/env';
import {
  cachedExternalAnswers,
  EXTERNAL_ANSWER_MAX_BYTES,
  EXTERNAL_CACHE_ENTRIES,
  EXTERNAL_CACHE_SECONDS,
  EXTERNAL_DECISION_URL,
  EXTERNAL_TIMEOUT_MS,
  externalDecision,
} from '../../../src/proxy/external-decision';
import { bearer, call, registerUser, uniqueEmail } from '../support/helpers';
import { promote, proxyEnv, recordingOrigin } from '../support/proxy-helpers';

type Answer = (req: Request) => Response | Promise<Response>;

/** A decision service whose answer each test sets; it records what it was asked. */
function decider() {
  let answer: Answer = () => Response.json({ allow: true });
  const asked: { url: string; method: string; body: Record<string, any> }[] = [];
  return {
    asked,
    answer(a: Answer) {
      answer = a;
    },
    async fetch(input: RequestInfo | URL, init?: RequestInit) {
      const req = new Request(input, init);
      asked.push({ url: req.url, method: req.method, body: await req.clone().json() });
      return answer(req);
    },
  };
}

const service = decider();
const origin = recordingOrigin();
const routes = [
  {
    path: '/app',
    origin: 'service:O',
    auth: 'required',
    policy: { allow: [{ roles: ['staff'] }], deny: [{ method: ['DELETE'] }], external: 'service:DECIDER' },
  },
  { path: '/lost', origin: 'service:O', auth: 'required', policy: { allow: [{ roles: ['staff'] }], external: 'service:MISSING' } },
];
const env = proxyEnv(routes, { O: origin, DECIDER: service });

async function staff(): Promise<{ token: string; email: string }> {
  const email = uniqueEmail('ext');
  await registerUser(email, undefined, env);
  return { token: await promote(env, email, { roles: ['staff'] }), email };
}

function logLines() {
  const out = vi.spyOn(console, 'log');
  const warn = vi.spyOn(console, 'warn');
  const err = vi.spyOn(console, 'error');
  return () => [...out.mock.calls, ...warn.mock.calls, ...err.mock.calls].map((c) => JSON.parse(String(c[0])) as Record<string, unknown>);
}

afterEach(() => {
  vi.restoreAllMocks();
  service.answer(() => Response.json({ allow: true }));
  service.asked.length = 0;
});

describe('asking the decision service', () => {
  it('allow: the request passes; the service got the identity and the request without its query', async () => {
    const { token, email } = await staff();
    const r = await call('/app/reports/7?secret=q', { env, headers: { ...bearer(token), 'cf-connecting-ip': '203.0.113.9' } });
    expect(r.status).toBe(200);
    expect(service.asked).toHaveLength(1);
    const { url, method, body } = service.asked[0]!;
    expect([url, method]).toEqual([EXTERNAL_DECISION_URL, 'POST']);
    expect(body).toMatchObject({
      version: 1,
      route: '/app',
      request: { method: 'GET', host: 'gate.example.com', path: '/app/reports/7', ip: '203.0.113.9', country: null },
      identity: { caller: 'person', email, email_verified: false, roles: ['staff'], groups: [], amr: ['pwd'] },
    });
    expect(JSON.stringify(body)).not.toContain('secret');
  });

  it('refuse: 403 forbidden without the reason; the log line says "external" and the reason', async () => {
    const { token } = await staff();
    service.answer(() => Response.json({ allow: false, reason: 'outside office hours' }));
    const lines = logLines();
    origin.seen.length = 0;
    const r = await call('/app/x', { env, headers: bearer(token) });
    expect(r.status).toBe(403);
    const text = await r.text();
    expect(JSON.parse(text)).toMatchObject({ error: 'forbidden' });
    expect(text).not.toContain('office');
    expect(origin.seen).toHaveLength(0);
    expect(lines().find((l) => l.event === 'request')).toMatchObject({ status: 403, policy_rule: 'external', policy_reason: 'outside office hours' });
  });

  it('is not asked when the route\'s own rules refuse (deny wins without asking)', async () => {
    const { token } = await staff();
    const outsider = await registerUser(undefined, undefined, env);
    expect((await call('/app/x', { env, method: 'DELETE', headers: bearer(token) })).status).toBe(403);
    expect((await call('/app/x', { env, headers: bearer(outsider.access_token) })).status).toBe(403);
    expect(service.asked).toHaveLength(0);
  });

  it.each<[string, Answer]>([
    ['a failure status', () => new Response('boom', { status: 500 })],
    ['an answer that is not JSON', () => new Response('yes')],
    ['an answer without a boolean allow', () => Response.json({ allow: 'true' })],
    ['a thrown error', () => Promise.reject(new Error('service crashed'))],
  ])('%s is a refusal, logged for the operator and not kept', async (_name, answer) => {
    const { token } = await staff();
    service.answer(answer);
    const lines = logLines();
    const r = await call('/app/x', { env, headers: bearer(token) });
    expect(r.status).toBe(403);
    expect(await r.json()).toMatchObject({ error: 'forbidden' });
    expect(lines().find((l) => l.event === 'policy_external_failed')).toMatchObject({ route: '/app', binding: 'DECIDER' });
    expect(lines().find((l) => l.event === 'request')).toMatchObject({ policy_rule: 'external failed' });
    // A failure is not remembered: once the service answers again, the same request passes.
    service.answer(() => Response.json({ allow: true }));
    expect((await call('/app/x', { env, headers: bearer(token) })).status).toBe(200);
  });

  it(`no answer within ${EXTERNAL_TIMEOUT_MS} ms is a refusal`, async () => {
    const { token } = await staff();
    service.answer((req) => new Promise((_, reject) => req.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')))));
    const lines = logLines();
    const started = Date.now();
    const r = await call('/app/x', { env, headers: bearer(token) });
    expect(r.status).toBe(403);
    expect(Date.now() - started).toBeGreaterThanOrEqual(EXTERNAL_TIMEOUT_MS - 50);
    expect(lines().find((l) => l.event === 'policy_external_failed')!.why).toMatch(/no answer within/);
  });

  it(`the ${EXTERNAL_TIMEOUT_MS} ms bound holds when the service ignores the abort, or stalls its answer's body`, async () => {
    const { token } = await staff();
    const stalls: Answer[] = [
      () => new Promise<Response>(() => undefined),
      () => new Response(new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode('{"allow":')) }), { headers: { 'content-type': 'application/json' } }),
    ];
    for (const stall of stalls) {
      service.answer(stall);
      const lines = logLines();
      const started = Date.now();
      const r = await call('/app/x', { env, headers: bearer(token) });
      expect(r.status).toBe(403);
      expect(Date.now() - started).toBeLessThan(EXTERNAL_TIMEOUT_MS + 1000);
      expect(lines().find((l) => l.event === 'policy_external_failed')!.why).toMatch(/no answer within/);
      vi.restoreAllMocks();
    }
  }, 15_000);

  it(`an answer longer than ${EXTERNAL_ANSWER_MAX_BYTES} bytes is a refusal, read no further`, async () => {
    const { token } = await staff();
    let sent = 0;
    const chunk = new TextEncoder().encode(' '.repeat(64 * 1024));
    service.answer(
      () =>
        new Response(
          new ReadableStream({
            start: (c) => c.enqueue(new TextEncoder().encode('{"allow":true,"reason":"')),
            pull: (c) => {
              // 4 MiB of answer (never closed as JSON): a reader that does not stop reads it all.
              if (sent >= 4 * 1024 * 1024) return c.close();
              sent += chunk.byteLength;
              c.enqueue(chunk);
            },
          }),
        ),
    );
    const lines = logLines();
    expect((await call('/app/x', { env, headers: bearer(token) })).status).toBe(403);
    expect(lines().find((l) => l.event === 'policy_external_failed')!.why).toMatch(/too long/);
    expect(sent).toBeLessThan(1024 * 1024);
  });

  it('a missing binding is a refusal', async () => {
    const { token } = await staff();
    const lines = logLines();
    expect((await call('/lost/x', { env, headers: bearer(token) })).status).toBe(403);
    expect(lines().find((l) => l.event === 'policy_external_failed')).toMatchObject({ binding: 'MISSING', why: 'no such service binding' });
  });
});

describe('the answer cache', () => {
  it(`keeps an answer ${EXTERNAL_CACHE_SECONDS} seconds for the same token and request, no longer`, async () => {
    const { token } = await staff();
    service.answer(() => Response.json({ allow: false }));
    expect((await call('/app/x', { env, headers: bearer(token) })).status).toBe(403);
    service.answer(() => Response.json({ allow: true }));
    expect((await call('/app/x', { env, headers: bearer(token) })).status).toBe(403);
    expect(service.asked).toHaveLength(1);
    // Another path, or another method, is another question.
    expect((await call('/app/y', { env, headers: bearer(token) })).status).toBe(200);
    expect(service.asked).toHaveLength(2);
    // Once the answer is older than the bound, the service is asked again.
    const now = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(now + EXTERNAL_CACHE_SECONDS * 1000 + 1);
    expect((await call('/app/x', { env, headers: bearer(token) })).status).toBe(200);
    expect(service.asked).toHaveLength(3);
  });

  it('the service is told whether a provider vouches for the groups: an empty list from a password sign-in is not "in no group"', async () => {
    const told: unknown[] = [];
    const recording = { fetch: async (_url: string, init: RequestInit) => (told.push(JSON.parse(String(init.body))), Response.json({ allow: true })) };
    const bindings = { TOLD: recording } as unknown as Env;
    const base: AuthUser = { id: 'u', email: 'a@example.com', emailVerified: true, roles: [], groups: [], groupsKnown: false, sessionId: 'vouch-test', tokenId: 'vouch-unknown', tokenExpiresAt: 0, issuedAt: 0, amr: ['pwd'], authTime: 0 };
    const request = { method: 'GET', host: 'h', path: '/p', ip: null, country: null };
    await externalDecision(bindings, 'TOLD', '/r', base, request);
    await externalDecision(bindings, 'TOLD', '/r', { ...base, groupsKnown: true, tokenId: 'vouch-none' }, request);
    expect(told).toMatchObject([{ identity: { groups: [], groups_known: false } }, { identity: { groups: [], groups_known: true } }]);
  });

  it(`holds at most ${EXTERNAL_CACHE_ENTRIES} answers per isolate, dropping the oldest`, async () => {
    let asked = 0;
    const counting = { fetch: async () => (asked++, Response.json({ allow: true })) };
    const bindings = { COUNTING: counting } as unknown as Env;
    const user: AuthUser = { id: 'u', email: 'a@example.com', emailVerified: true, roles: [], groups: [], groupsKnown: true, sessionId: 's', tokenId: 'bound-test', tokenExpiresAt: 0, issuedAt: 0, amr: [], authTime: 0 };
    const request = (path: string) => ({ method: 'GET', host: 'h', path, ip: null, country: null });
    for (let i = 0; i <= EXTERNAL_CACHE_ENTRIES; i++) await externalDecision(bindings, 'COUNTING', '/r', user, request(`/p${i}`));
    expect(asked).toBe(EXTERNAL_CACHE_ENTRIES + 1);
    expect(cachedExternalAnswers()).toBeLessThanOrEqual(EXTERNAL_CACHE_ENTRIES);
    // The newest is still kept; the first was dropped to make room.
    await externalDecision(bindings, 'COUNTING', '/r', user, request(`/p${EXTERNAL_CACHE_ENTRIES}`));
    expect(asked).toBe(EXTERNAL_CACHE_ENTRIES + 1);
    await externalDecision(bindings, 'COUNTING', '/r', user, request('/p0'));
    expect(asked).toBe(EXTERNAL_CACHE_ENTRIES + 2);
  });
});

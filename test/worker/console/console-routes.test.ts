/**
 * The console's Routes and policy area: the loaded routes with every kind of rule in words, and
 * "who can reach this?", whose answer is the proxy's own (checked by sending the same user's
 * request through the proxy), with a clear page for bad input.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { bearer, call, registerUser, seedUser, type TestEnv } from '../support/helpers';
import { uniqueEmail } from '../support/mail';
import { promote, recordingOrigin } from '../support/proxy-helpers';
import type { Jar } from '../support/second-factor-helpers';
import { adminWithSecondFactor, auditRows, browse, consoleEnv, pageHtml } from './console-support';

const AREA = '/auth/admin/console/routes';

const ROUTES = [
  { path: '/ops', origin: 'service:OPS', auth: 'required', allow: { roles: ['ops'] } },
  { path: '/eng', origin: 'service:OPS', auth: 'required', policy: { allow: [{ caller: ['person'] }], deny: [{ groups: ['contractors'] }] } },
  { path: '/secure', origin: 'service:OPS', auth: 'required', require: ['mfa'], max_auth_age: 900, revocation: 'immediate' },
  { path: '/open', origin: 'service:OPS', auth: 'public' },
  { path: '/maybe', origin: 'https://maybe.internal.example/base', auth: 'optional' },
  {
    path: '/reports',
    origin: 'https://reports.internal.example/base/path',
    auth: 'required',
    logout_notify: 'https://reports.internal.example/backchannel/logout?token=hush',
    policy: {
      allow: [
        { email: ['dana@example.com'] },
        { domain: ['example.org'], method: ['GET'] },
        { any: [{ amr: ['mfa'] }, { signed_in_within: 3600 }] },
        { caller: ['service'], client: ['cli_Reporter1'] },
      ],
      deny: [{ country: ['RU', 'KP'] }, { ip: ['192.0.2.0/24'] }, { path: ['/admin/**'], not: { roles: ['admin'] } }],
      external: 'service:DECIDER',
    },
  },
  { host: 'mcp.example.net', path: '/', origin: 'service:OPS', auth: 'required', resource: 'mcp', allow: { roles: ['ops'] } },
  { host: 'app.example.net', path: '/', origin: 'service:OPS', auth: 'required' },
  { path: '/reads', origin: 'service:OPS', auth: 'required', policy: { allow: [{ method: ['GET'] }] } },
];

let e: TestEnv;
let admin: { id: string; email: string; jar: Jar };

beforeAll(async () => {
  // Origins that cannot be reached (they must not be: nothing here proxies to them) become failures, never passes.
  e = consoleEnv({ ROUTES: JSON.stringify(ROUTES), OPS: recordingOrigin(), OIDC_ISSUER: 'https://idp.example.com', OIDC_CLIENT_ID: 'gatehouse' });
  admin = await adminWithSecondFactor(e);
});

const cardOf = (html: string, path: string) => {
  const start = html.indexOf(`data-path="${path}"`);
  expect(start, `a card for ${path}`).toBeGreaterThan(-1);
  return html.slice(start, html.indexOf('</section>', start));
};

describe('the routes as loaded, in words', () => {
  it('shows every route with its host, path, origin host (not its path), modes, and each kind of rule in words', async () => {
    const html = await pageHtml(await browse(e, admin.jar, AREA));
    expect(html).toContain(`Routes (${ROUTES.length})`);
    const ops = cardOf(html, '/ops');
    expect(ops).toContain('gate.example.com (the gateway’s own)');
    expect(ops).toContain('the service binding OPS');
    expect(ops).toContain('Admits someone who holds the role “ops”.');

    const eng = cardOf(html, '/eng');
    expect(eng).toContain('Refuses someone who is in the provider group “contractors”.');
    expect(eng).toContain('Admits someone who is a person.');
    expect(eng).toContain('a refusal wins');

    const secure = cardOf(html, '/secure');
    expect(secure).toContain('Any signed-in user.');
    expect(secure).toContain('Also needs a sign-in with a second factor and a sign-in no older than 15 minutes');
    expect(secure).toContain('immediate: every request asks');

    expect(cardOf(html, '/open')).toContain('Everyone, signed in or not');
    expect(cardOf(html, '/open')).not.toContain('Revocation');
    expect(cardOf(html, '/ops')).toContain('cached: a sign-out is felt within the revocation cache time');
    const maybe = cardOf(html, '/maybe');
    expect(maybe).toContain('maybe.internal.example');
    expect(maybe).toContain('Everyone; a signed-in user’s identity is passed on');
    expect(html).not.toContain('/base');

    const reports = cardOf(html, '/reports');
    for (const words of [
      'Admits someone who signs in as dana@example.com (a verified address).',
      'Admits someone who has a verified address at example.org and uses the method GET or HEAD.',
      'Admits someone who either (signed in with a second factor) or (signed in within the last 1 hour).',
      'Admits someone who is a service (a machine with its own token) and is the app or service cli_Reporter1.',
      'Refuses someone who comes from the country RU or KP.',
      'Refuses someone who comes from the addresses 192.0.2.0/24.',
      'Refuses someone who asks for a path below the route matching /admin/** and does not meet (holds the role “admin”).',
      'the service DECIDER is asked too',
      'Told when a session ends: reports.internal.example',
    ]) {
      expect(reports).toContain(words);
    }
    expect(html).not.toContain('hush');
    expect(html).not.toContain('/backchannel');

    const mcp = cardOf(html, '/');
    expect(html).toContain('mcp.example.net');
    expect(mcp).toContain('An OAuth protected resource (MCP server)');
    // The explainer's form is on the page, a GET form (it changes nothing).
    expect(html).toMatch(/<form method="get" action="\/auth\/admin\/console\/routes\/explain" id="explain-form">/);
  });
});

/** The explainer's answer: its decision, and for a refusal whether a route matched (no route: 404). */
async function explained(user: string, url: string, method = 'GET') {
  const r = await browse(e, admin.jar, `${AREA}/explain?${new URLSearchParams({ user, url, method })}`);
  const html = await pageHtml(r);
  expect(r.status, html).toBe(200);
  const decision = /id="answer" data-decision="([a-z-]+)"/.exec(html)?.[1];
  const outcome = decision === 'deny' && !html.includes('id="matched"') ? 'no-route' : decision;
  return { outcome, html };
}

/** What the proxy does with the user's own request. */
async function proxied(token: string, url: string, method = 'GET') {
  const r = await call(url, { env: e, method, headers: { ...bearer(token), accept: 'application/json' } });
  if (r.status === 200) return 'allow';
  if (r.status === 403) return 'deny';
  if (r.status === 404) return 'no-route';
  if (r.status === 401 && ((await r.json()) as { error: string }).error === 'insufficient_user_authentication') return 'step-up';
  return `status ${r.status}`;
}

describe('who can reach this? (the proxy\'s own decision, in words)', () => {
  it('gives the decision the proxy gives for the same user and URL: allow, deny by role, deny by group, step-up, no route, another host', async () => {
    const opsEmail = uniqueEmail('ops');
    await registerUser(opsEmail, undefined, e);
    const opsToken = await promote(e, opsEmail, { roles: ['ops'] });
    const plainEmail = uniqueEmail('plain');
    const plainToken = (await registerUser(plainEmail, undefined, e)).access_token;

    const cases: [token: string, email: string, url: string, expected: string][] = [
      [opsToken, opsEmail, 'https://gate.example.com/ops/deploy', 'allow'],
      [plainToken, plainEmail, 'https://gate.example.com/ops/deploy', 'deny'],
      [opsToken, opsEmail, 'https://gate.example.com/eng/board', 'deny'],
      [plainToken, plainEmail, 'https://gate.example.com/secure/x', 'step-up'],
      [plainToken, plainEmail, 'https://gate.example.com/nowhere', 'no-route'],
      [plainToken, plainEmail, 'https://elsewhere.example/ops/deploy', 'no-route'],
      [plainToken, plainEmail, 'https://app.example.net/any', 'allow'],
      [plainToken, plainEmail, 'https://gate.example.com/open/x', 'allow'],
    ];
    for (const [token, email, url, expected] of cases) {
      const page = await explained(email, url);
      expect(page.outcome, `${email} ${url}`).toBe(expected);
      expect(await proxied(token, url), `${email} ${url} at the proxy`).toBe(expected);
    }
  });

  it('explains each decision in words: the deciding rule, the route, and the facts it was decided on', async () => {
    const email = uniqueEmail('explained');
    const user = await registerUser(email, undefined, e);
    await promote(e, email, { roles: ['ops'] });

    const allowed = await explained(email, '/ops/deploy');
    expect(allowed.html).toContain('Allowed by allow.roles.');
    expect(allowed.html).toContain('allow.roles: Admits someone who holds the role “ops”.');
    expect(allowed.html).toContain('Route: <strong class="wrap">gate.example.com /ops</strong>');
    expect(allowed.html).toContain('Roles: ops.');
    expect(allowed.html).toContain(`Decided for ${email}`);

    const group = await explained(user.user.id, '/eng/board');
    expect(group.html).toContain('Refused by deny[0].');
    expect(group.html).toContain('deny[0]: Refuses someone who is in the provider group “contractors”.');
    expect(group.html).toContain('Groups: none; the provider’s are unknown');

    const stepUp = await explained(email, '/secure/x');
    expect(stepUp.html).toContain('they must step up first: the route needs a second factor.');

    const none = await explained(email, '/nowhere');
    expect(none.html).toContain('No route matches /nowhere on gate.example.com: the gateway answers 404.');
    const host = await explained(email, 'https://elsewhere.example/x');
    expect(host.html).toContain('No route serves elsewhere.example: the gateway answers 404 there.');
    const own = await explained(email, '/auth/me');
    expect(own.html).toContain('Not proxied: /auth/me is one of the gateway’s own endpoints');

    // Audited as the JSON API's question is, with the acting admin.
    expect((await auditRows('admin_policy_explained', user.user.id)).map((d) => d.admin)).toContain(admin.id);
  });

  it('bad input gets the form again with a clear message: unknown user, overlong or foreign URL, bad method, nothing asked', async () => {
    const email = uniqueEmail('bad-input');
    await registerUser(email, undefined, e);
    const ask = async (query: Record<string, string>) => {
      const r = await browse(e, admin.jar, `${AREA}/explain?${new URLSearchParams(query)}`);
      const html = await pageHtml(r);
      const message = /<div class="error" role="alert" id="explain-error">([^<]*)<\/div>/.exec(html)?.[1] ?? null;
      return { status: r.status, message, html };
    };
    const unknown = await ask({ user: 'nobody@example.com', url: '/ops/x' });
    expect(unknown).toMatchObject({ status: 404, message: 'No user has the email address or id “nobody@example.com”.' });
    expect(unknown.html).toContain('value="nobody@example.com"'); // the form keeps what was asked
    expect(await ask({ user: email, url: `/ops/${'x'.repeat(2050)}` })).toMatchObject({ status: 400, message: 'URL: is too long.' });
    expect(await ask({ user: 'x'.repeat(255), url: '/ops/x' })).toMatchObject({ status: 400, message: 'User: is too long.' });
    expect(await ask({ user: email, url: 'javascript:alert(1)' })).toMatchObject({ status: 400, message: 'URL: must be an http(s) URL or a path.' });
    expect(await ask({ user: email, url: '/ops/x', method: 'GE T' })).toMatchObject({ status: 400, message: 'Method: is not an HTTP method.' });
    expect(await ask({ user: '', url: '/ops/x' })).toMatchObject({ status: 400, message: 'User: is required (a user id or email address).' });
    expect(await ask({ user: email, url: '/ops/%2e%2e%2fadmin' })).toMatchObject({ status: 400, message: 'URL: the path is not one the gateway would serve.' });
    // Nothing asked yet: the form alone, no error and no answer.
    const blank = await ask({});
    expect(blank).toMatchObject({ status: 200, message: null });
    expect(blank.html).not.toContain('id="answer"');
  });
});

describe('who can reach this? where the request says more than its method line', () => {
  it('a _method parameter naming another method makes the method unknown, as at the proxy: an allow on the method does not admit', async () => {
    const email = uniqueEmail('override');
    const token = (await registerUser(email, undefined, e)).access_token;
    for (const [url, expected] of [
      ['https://gate.example.com/reads/x', 'allow'],
      ['https://gate.example.com/reads/x?_method=GET', 'allow'],
      ['https://gate.example.com/reads/x?_method=DELETE', 'deny'],
      ['https://gate.example.com/reads/x?a=1&_method=delete', 'deny'],
    ] as const) {
      expect(await proxied(token, url), `${url} at the proxy`).toBe(expected);
      const page = await explained(email, url);
      expect(page.outcome, url).toBe(expected);
      if (expected === 'deny') expect(page.html).toContain('The URL’s _method parameter names another method');
    }
  });

  it('TRACE is refused on every path before any route, as the gateway answers it (405), never "allowed"', async () => {
    const email = uniqueEmail('trace');
    const token = (await registerUser(email, undefined, e)).access_token;
    for (const url of ['https://gate.example.com/open/x', 'https://app.example.net/any']) {
      expect(await proxied(token, url, 'TRACE'), `${url} at the proxy`).toBe('status 405');
      const page = await explained(email, url, 'trace');
      expect(page.outcome, url).toBe('no-route');
      expect(page.html).toContain('Refused: the gateway answers TRACE with 405 on every path');
    }
  });

  it('a protected resource (MCP): the user\'s own session is refused there (401), so the answer says only an app they allowed gets through', async () => {
    const email = uniqueEmail('mcp');
    await registerUser(email, undefined, e);
    const token = await promote(e, email, { roles: ['ops'] });
    expect(await proxied(token, 'https://mcp.example.net/x')).toBe('status 401');
    const page = await explained(email, 'https://mcp.example.net/x');
    expect(page.html).not.toContain('Allowed by allow.roles.');
    expect(page.html).toContain('Only through an app: this route is an OAuth protected resource (https://mcp.example.net)');
    expect(page.html).toContain('a browser session or the gateway’s own access token is refused there (401)');
  });
});

describe('names from the configuration and the question are text, never markup', () => {
  it('a group or role name with markup in a rule, and markup in the asked user and URL, are escaped', async () => {
    const markup = '<img src=x onerror=alert(1)>';
    const routes = [{ path: '/x', origin: 'service:OPS', auth: 'required', policy: { allow: [{ roles: [`r${markup}`] }, { groups: [`g${markup}`] }], deny: [{ groups: [`scim:${markup}`] }] } }];
    const x = consoleEnv({ ROUTES: JSON.stringify(routes), OPS: recordingOrigin(), OIDC_ISSUER: 'https://idp.example.com', OIDC_CLIENT_ID: 'gatehouse' });
    const a = await adminWithSecondFactor(x);
    const page = await pageHtml(await browse(x, a.jar, AREA));
    expect(page).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(page).not.toContain(markup);
    const asked = await pageHtml(await browse(x, a.jar, `${AREA}/explain?${new URLSearchParams({ user: `u${markup}`, url: `/x/${markup}` })}`));
    expect(asked).not.toContain(markup);
    const answered = await pageHtml(await browse(x, a.jar, `${AREA}/explain?${new URLSearchParams({ user: a.email, url: `/x/"${markup}?q="${markup}` })}`));
    expect(answered).toContain('id="answer"');
    expect(answered).not.toContain(markup);
  });
});

describe('who can reach this? for a user who is not signed in', () => {
  it('a user with no live session: the answer says they must sign in first, and that sign-in methods and time were taken as none, not as a fresh sign-in', async () => {
    const user = await seedUser({ roles: ['ops'] });
    const page = await explained(user.email, '/secure/x');
    expect(page.outcome).toBe('step-up');
    expect(page.html).toContain('They have no live session, so they must sign in first: decided as a session with no sign-in methods and no sign-in time');
    expect(page.html).not.toContain('fresh sign-in');
  });
});

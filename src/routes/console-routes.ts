/**
 * The console's Routes and policy area, mounted at `{AUTH_PREFIX}/admin/console/routes` behind
 * the console's guard (routes/console.ts):
 *
 * - `GET /`                            the loaded ROUTES: hosts, paths, origins, modes, and who each admits, in words
 * - `GET /explain?user=&url=&method=`  "who can reach this?": the route that matches and the decision, explained
 *
 * Nothing here changes anything, so the explainer is a GET form. Its answer comes from
 * {@link explainRequest} (routes/policy-explain.ts), the JSON API's own, which decides with the
 * proxy's code; this module only puts the answer into words.
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import type { Policy } from '../config/policy';
import { admitsWords, duration, labelledRuleWords, ruleWords, stepUpWords } from '../config/policy-words';
import { routePolicies } from '../config/route-policies';
import { serviceBinding, serviceTarget, type RouteConfig } from '../config/routes-schema';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { NO_ALLOW_MATCHED } from '../proxy/policy';
import { gatewayHost } from '../proxy/route-table';
import { ExplainPage, RoutesPage, type ExplainAnswerView, type ExplainForm, type RouteView } from '../ui/console-routes-pages';
import { renderPage } from '../ui/render';
import { areaPath, consoleChrome } from './console-kit';
import { DISABLED, explainQuery, explainRequest, NO_HOST, NO_POLICY, NO_ROUTE, OWN_ENDPOINT, PUBLIC_ROUTE, REFUSED_METHOD, type Explanation } from './policy-explain';

/** Where a notice or an origin goes, without its path, query or any credentials: the host, or the service binding. */
function destination(target: string): string {
  const binding = serviceBinding(target) ?? serviceTarget(target)?.binding ?? null;
  if (binding !== null) return `the service binding ${binding}`;
  return URL.canParse(target) ? new URL(target).host : 'an address that cannot be read';
}

const AUTH_WORDS: Record<RouteConfig['auth'], string> = {
  required: 'required: a sign-in is needed',
  optional: 'optional: anyone passes; a signed-in user is named to the origin',
  public: 'public: no one is checked',
};

function routeView(route: RouteConfig, policy: Policy | null, ownHost: string): RouteView {
  return {
    host: route.host ?? `${ownHost} (the gateway’s own)`,
    path: route.path,
    origin: destination(route.origin),
    auth: AUTH_WORDS[route.auth],
    // A public route checks no one, so no sign-out can be felt there.
    revocation:
      route.auth === 'public'
        ? null
        : route.revocation === 'immediate'
        ? 'immediate: every request asks the user’s sessions, so a sign-out is felt at once'
        : 'cached: a sign-out is felt within the revocation cache time (README “Revocation”)',
    admits: admitsWords(route, policy),
    rules: policy ? [...policy.deny.map((r) => ({ label: r.label, words: ruleWords(r, 'deny') })), ...policy.allow.map((r) => ({ label: r.label, words: ruleWords(r, 'allow') }))] : [],
    stepUp: stepUpWords(route),
    external: policy?.external ? `After the rules admit someone, the service ${policy.external} is asked too, and may still refuse.` : null,
    resource: route.resource === 'mcp' ? 'An OAuth protected resource (MCP server): only tokens apps obtained for it pass, no browser sessions.' : null,
    logoutNotify: route.logout_notify ? `Told when a session ends: ${destination(route.logout_notify)}` : null,
  };
}

/** The form's fields as asked (kept to show them again), and what they parse to. */
const formFields = (c: Context<AppEnv>): ExplainForm => ({ user: c.req.query('user') ?? '', url: c.req.query('url') ?? '', method: c.req.query('method') ?? 'GET' });

const LABELS: Record<string, string> = { user: 'User', url: 'URL', method: 'Method' };

/** The explainer's answer in words. */
function answerView(e: Explanation, config: { AUTH_PREFIX: string }, ownHost: string): ExplainAnswerView {
  const a = e.answer;
  const url = new URL(a.request.url);
  const where = a.route ? `${a.route.host ?? ownHost} ${a.route.path}` : null;
  const facts: string[] = [];
  if (a.identity) {
    facts.push(`Decided for ${a.identity.email} (${a.identity.email_verified ? 'verified address' : 'address not verified: rules on emails and domains do not hold for it'}).`);
    facts.push(`Roles: ${a.identity.roles.length ? a.identity.roles.join(', ') : 'none'}.`);
    const groups = a.identity.groups.length ? a.identity.groups.join(', ') : 'none';
    facts.push(
      a.identity.groups_from.startsWith('unknown')
        ? `Groups: ${groups}; the provider’s are unknown (no live session from a provider that supplies them, or they are too old), so a rule that refuses a group refuses.`
        : `Groups: ${groups} (from ${a.identity.groups_from}).`,
    );
    facts.push(a.identity.session ? `Their most recently used session signed in with: ${a.identity.session.amr.join(', ') || 'nothing recorded'}.` : 'They have no live session, so they must sign in first: decided as a session with no sign-in methods and no sign-in time, so a rule or a step-up that asks for either does not hold (a real sign-in would bring both).');
    if (a.request.method_override !== null) facts.push(`The URL’s _method parameter names another method (${a.request.method_override}), so the method counts as unknown, as at the proxy: a rule that admits on the method does not admit; one that refuses on it refuses.`);
    facts.push('Not known here: the client’s address and country. A rule that refuses on them refuses; one that admits on them does not admit.');
  }
  const ruleWords = (label: string) => (e.policy ? labelledRuleWords(e.policy, label) : null);
  let decision: ExplainAnswerView['decision'] = a.decision === 'allow' ? 'allow' : a.decision === 'deny' ? 'deny' : 'not-proxied';
  let headline: string;
  const because: string[] = [];
  switch (a.rule) {
    case REFUSED_METHOD:
      headline = `Refused: the gateway answers ${a.request.method} with 405 on every path; such a request never reaches a route or an origin.`;
      break;
    case NO_HOST:
      headline = `No route serves ${url.host}: the gateway answers 404 there.`;
      because.push(`Only the gateway’s own host and the hosts that routes name are served; no route names ${url.host}.`);
      break;
    case OWN_ENDPOINT:
      headline = `Not proxied: ${url.pathname} is one of the gateway’s own endpoints (under ${config.AUTH_PREFIX}).`;
      break;
    case NO_ROUTE:
      headline = `No route matches ${url.pathname} on ${url.host}: the gateway answers 404.`;
      break;
    case PUBLIC_ROUTE:
      headline = 'Allowed: the route is public, no one is checked.';
      break;
    case DISABLED:
      headline = 'Refused: the account is disabled.';
      break;
    case NO_POLICY:
      headline = 'Allowed: the route has no rules, so any signed-in user passes.';
      break;
    case NO_ALLOW_MATCHED:
      headline = 'Refused: no rule admits them.';
      because.push(...(e.policy?.allow.map((r) => `${r.label} does not hold: ${ruleWords(r.label)}`) ?? []));
      break;
    default:
      headline = a.decision === 'allow' ? `Allowed by ${a.rule}.` : `Refused by ${a.rule}.`;
      because.push(`${a.rule}: ${ruleWords(a.rule) ?? a.rule}`);
  }
  if (a.step_up) {
    decision = 'step-up';
    const missing = a.step_up.missing.map((m) => (m === 'mfa' ? 'a second factor' : 'a passkey'));
    const age = a.step_up.max_age === null ? [] : [`a sign-in no older than ${duration(a.step_up.max_age)}`];
    headline = `The rules admit them, but they must step up first: the route needs ${[...missing, ...age].join(' and ')}.`;
  }
  if (a.resource) {
    // The user's own session never passes there: only an app's token for the resource does.
    if (decision === 'allow') {
      headline = `Only through an app: this route is an OAuth protected resource (${a.resource}); the rules admit them when an app they allowed calls it with a token for it, but a browser session or the gateway’s own access token is refused there (401).`;
    } else because.push(`This route is an OAuth protected resource (${a.resource}): a browser session or the gateway’s own access token is refused there (401) in any case.`);
    facts.push('Not known here: which app calls. A rule on the app (client) is decided as for no app.');
  }
  if (a.external) because.push(`Then the service ${a.external.binding} is asked, which may still refuse (not asked here: its answer depends on the live request).`);
  return { decision, headline, route: where, because, facts, method: a.request.method, url: a.request.url };
}

export const consoleRoutesRoutes = new Hono<AppEnv>()
  .get('/', async (c) => {
    const config = c.get('config');
    const policies = await routePolicies(config);
    const ownHost = gatewayHost(config);
    const routes = config.ROUTES.map((r) => routeView(r, policies?.get(r) ?? null, ownHost));
    return renderPage(c, (nonce, brand) => RoutesPage({ ...consoleChrome(c, nonce, brand), routes, explain: areaPath(c, 'routes', '/explain'), form: { user: '', url: '', method: 'GET' } }));
  })
  .get('/explain', async (c) => {
    const form = formFields(c);
    const asked = c.req.query('user') !== undefined || c.req.query('url') !== undefined;
    const page = (props: { answer?: ExplainAnswerView; error?: string }, status: 200 | 400 | 404 = 200) =>
      renderPage(c, (nonce, brand) => ExplainPage({ ...consoleChrome(c, nonce, brand), action: areaPath(c, 'routes', '/explain'), back: areaPath(c, 'routes'), form, ...props }), status);
    if (!asked) return page({});
    const parsed = v.safeParse(explainQuery, { user: form.user, url: form.url, method: form.method || 'GET' });
    if (!parsed.success) {
      const issue = parsed.issues[0];
      const key = issue.path?.map((p) => String(p.key)).join('.') ?? '';
      return page({ error: `${LABELS[key] ?? key}: ${issue.message}.` }, 400);
    }
    try {
      const explained = await explainRequest(c, parsed.output);
      return page({ answer: answerView(explained, c.get('config'), gatewayHost(c.get('config'))) });
    } catch (e) {
      if (!(e instanceof ApiError) || (e.code !== 'not_found' && e.code !== 'invalid_request')) throw e;
      if (e.code === 'not_found') return page({ error: `No user has the email address or id “${form.user}”.` }, 404);
      return page({ error: e.description.replace(/^Query "url": /, 'URL: ') }, 400);
    }
  });


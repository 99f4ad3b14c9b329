/**
 * The console's Apps and machines area, mounted at `{AUTH_PREFIX}/admin/console/apps` behind the
 * console's guard (routes/console.ts):
 *
 * - `GET  /?kind=app|public|service&page=`        the OAuth clients, newest first, 25 a page
 * - `GET  /clients/new`, `POST /clients/new`       the registration form; register
 * - `GET  /clients/:clientId`                      one client
 * - `POST /clients/:clientId/rotate-secret`        `overlap_seconds=`: a new secret, shown once
 * - `POST /clients/:clientId/disable`, `/enable`   refuse it (revoking its tokens), accept it again
 * - `GET  /scim-tokens`, `POST /scim-tokens/new`   the directory's tokens; create one (shown once)
 * - `GET  /scim-tokens/:tokenId`                   one token
 * - `POST /scim-tokens/:tokenId/rotate`            `overlap_seconds=`: a new token, shown once
 * - `POST /scim-tokens/:tokenId/disable`, `/enable`, `/delete`
 * - `GET  /consents?email=`, `GET /consents/:id`   the apps a user allowed
 * - `POST /consents/:id/:clientId/revoke`          withdraw a consent, ending the app's grants
 *
 * Each action is confirmed first (console-kit.ts) and done by the same function as the JSON
 * admin API's (auth/client-administration.ts, auth/scim-token-administration.ts) or the account
 * page's (auth/app-consents.ts), which audits it. A new secret or token is shown once: the
 * confirmed post answers the page that shows it (200, `Cache-Control: no-store`), not a
 * redirect, so it is never in a URL, a `Location` or the history's address, and leaving the
 * page loses it (the gateway keeps only its hash).
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { consentedApps, viewConsents, withdrawAppConsent } from '../auth/app-consents';
import {
  clientToAdminister,
  disableClientFor,
  enableClientFor,
  listClientsFor,
  overlapEnd,
  overlapSeconds,
  registerClient,
  registrationMetadata,
  rotateSecret,
  viewClient,
} from '../auth/client-administration';
import { AUTH_METHODS, GRANT_TYPES, KNOWN_SCOPES, type MetadataProblem } from '../auth/client-metadata';
import { createScimToken, disableScimToken, enableScimToken, listScimTokensFor, removeScimToken, rotateScimToken, scimTokenName, scimTokenToAdminister, viewScimToken } from '../auth/scim-token-administration';
import type { ScimToken } from '../auth/scim-tokens';
import type { AppEnv } from '../env';
import { readQuery } from '../http/body';
import { ApiError } from '../http/errors';
import { clientClass, type ClientClass, type OAuthClient } from '../storage/oauth-clients';
import { findUserByEmail } from '../storage/users';
import { sha256 } from '../util/random';
import {
  ClientFormPage,
  ClientListPage,
  ClientPage,
  ConsentsPage,
  OVERLAP_CHOICES,
  ScimTokenListPage,
  ScimTokenPage,
  SecretShownPage,
  type AppsLinks,
  type ClientDetail,
  type ClientFormValues,
  type ClientRow,
  type ScimTokenRow,
  type SecretShownProps,
} from '../ui/console-apps-pages';
import type { ConsoleChrome } from '../ui/console-pages';
import { renderPage } from '../ui/render';
import { targetUser } from './admin';
import { areaPath, backWithNotice, confirmAction, consoleChrome, noticeFrom, readActionForm } from './console-kit';

const PAGE_SIZE = 25;
const MAX_PAGE = 4000;
const SCIM_TOKENS_SHOWN = 100;

/** The notices after each action (`?done=`). */
const NOTICES = {
  registered: 'The client is registered. It has no secret: it authenticates with its keys, or (a public client) with none.',
  disabled: 'The client is disabled: it is refused from now on, and every token it got is revoked.',
  enabled: 'The client is enabled: it is accepted again. Tokens revoked when it was disabled stay revoked.',
  token_disabled: 'The SCIM token is disabled: the directory’s requests with it are refused from the next one.',
  token_enabled: 'The SCIM token is enabled: it works again.',
  token_deleted: 'The SCIM token is deleted: requests with it are refused from the next one.',
  consent_revoked: 'The consent is withdrawn: the app’s grants for this user have ended, with their tokens. The app must ask again.',
} as const;

const CLASSES = ['app', 'public', 'service'] as const satisfies readonly ClientClass[];
const CLASS_LABELS: Record<ClientClass, string> = { app: 'Apps', public: 'Public apps', service: 'Services' };

const listQuery = v.object({
  kind: v.optional(v.picklist(CLASSES, 'must be app, public or service')),
  page: v.optional(v.pipe(v.string(), v.regex(/^\d{1,4}$/, 'must be a page number'), v.transform(Number), v.minValue(1, 'must be a page number'), v.maxValue(MAX_PAGE, `must be at most ${MAX_PAGE}`)), '1'),
});

const consentQuery = v.object({ email: v.optional(v.pipe(v.string(), v.trim(), v.maxLength(254, 'is too long (254 characters at most)')), '') });

/** A text field of a form, bounded (the body's own cap bounds the whole). */
const text = (max: number) => v.optional(v.pipe(v.string(), v.maxLength(max, `is too long (${max} characters at most)`)), '');
const checkbox = v.optional(v.picklist(['on'], 'must be "on"'));

/** One checkbox a line of choices: a form gives each field once, so every choice has its own. */
const grantBoxes: Record<`grant_${(typeof GRANT_TYPES)[number]}`, typeof checkbox> = { grant_authorization_code: checkbox, grant_refresh_token: checkbox, grant_client_credentials: checkbox };
const scopeBoxes: Record<`scope_${(typeof KNOWN_SCOPES)[number]}`, typeof checkbox> = { scope_openid: checkbox, scope_profile: checkbox, scope_email: checkbox, scope_offline_access: checkbox };

/** The registration form: the JSON API's fields, lists one a line, choices as checkboxes. */
const registrationForm = {
  name: text(200),
  kind: v.optional(v.picklist(['confidential', 'public'], 'must be confidential or public'), 'confidential'),
  token_endpoint_auth_method: v.optional(v.picklist(AUTH_METHODS, `must be one of: ${AUTH_METHODS.join(', ')}`), 'client_secret_basic'),
  redirect_uris: text(50_000),
  post_logout_redirect_uris: text(50_000),
  allowed_audiences: text(50_000),
  backchannel_logout_uri: text(2_100),
  jwks: text(10_000),
  first_party: checkbox,
  ...grantBoxes,
  ...scopeBoxes,
};

type RegistrationForm = v.InferOutput<v.ObjectSchema<typeof registrationForm, undefined>>;

const lines = (s: string) => s.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);

/** The form as typed, for showing it again. */
function formValues(f: RegistrationForm): ClientFormValues {
  return {
    name: f.name,
    kind: f.kind,
    token_endpoint_auth_method: f.token_endpoint_auth_method,
    redirect_uris: f.redirect_uris,
    post_logout_redirect_uris: f.post_logout_redirect_uris,
    grant_types: GRANT_TYPES.filter((g) => f[`grant_${g}`] === 'on'),
    allowed_scopes: KNOWN_SCOPES.filter((s) => f[`scope_${s}`] === 'on'),
    allowed_audiences: f.allowed_audiences,
    backchannel_logout_uri: f.backchannel_logout_uri,
    first_party: f.first_party === 'on',
    jwks: f.jwks,
  };
}

const EMPTY_FORM: ClientFormValues = {
  name: '',
  kind: 'confidential',
  token_endpoint_auth_method: 'client_secret_basic',
  redirect_uris: '',
  post_logout_redirect_uris: '',
  grant_types: ['authorization_code', 'refresh_token'],
  allowed_scopes: [...KNOWN_SCOPES],
  allowed_audiences: '',
  backchannel_logout_uri: '',
  first_party: false,
  jwks: '',
};

/** The JSON API's registration body the form stands for; `jwks` that is not JSON is a problem of its own. */
function registrationInput(values: ClientFormValues): { input: Record<string, unknown>; problems: MetadataProblem[] } {
  const problems: MetadataProblem[] = [];
  let jwks: unknown = null;
  if (values.jwks.trim() !== '') {
    try {
      jwks = JSON.parse(values.jwks);
    } catch {
      problems.push({ field: 'jwks', message: 'must be JSON: a JWK Set such as {"keys": [...]}' });
    }
  }
  return {
    input: {
      name: values.name,
      kind: values.kind,
      token_endpoint_auth_method: values.token_endpoint_auth_method,
      redirect_uris: lines(values.redirect_uris),
      post_logout_redirect_uris: lines(values.post_logout_redirect_uris),
      grant_types: values.grant_types,
      allowed_scopes: values.allowed_scopes,
      allowed_audiences: lines(values.allowed_audiences),
      backchannel_logout_uri: values.backchannel_logout_uri.trim() || null,
      first_party: values.first_party,
      jwks,
    },
    problems,
  };
}

/** Problems by form field: `redirect_uris.1` is the redirect URIs' box, `jwks.keys.0` the keys'. */
function problemsByField(problems: MetadataProblem[], input: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of problems) {
    const [field = 'form', index] = p.field.split('.');
    const list = input[field];
    const which = index !== undefined && Array.isArray(list) && typeof list[Number(index)] === 'string' ? `“${String(list[Number(index)])}” ` : '';
    const known = field in EMPTY_FORM;
    const message = known ? `${which}${p.message}` : `${p.field}: ${p.message}`;
    const key = known ? field : 'form';
    out[key] = out[key] ? `${out[key]}; ${message}` : message;
  }
  return out;
}

/** The form fields as posted again by the confirmation page (the empty ones left out). */
function hiddenFields(f: RegistrationForm): Record<string, string> {
  return Object.fromEntries(Object.entries(f).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== ''));
}

/**
 * A rotation's form: the overlap, and (from the confirmation page) `from`, which secret it
 * replaces. The confirmation carries it so that posting the confirmation again (a reload of the
 * page that showed the new secret) finds another secret there and rotates nothing (409): the
 * secret just shown keeps working.
 */
const rotationForm = {
  overlap_seconds: v.pipe(v.string('is required'), v.regex(/^\d{1,7}$/, 'must be a whole number of seconds'), v.transform(Number), overlapSeconds),
  from: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,64}$/, 'must name a secret'))),
};

/** A name for the current secret (a digest of its hash: it tells nothing of the secret). */
const secretVersion = async (secretHash: string) => (await sha256(`rotation:${secretHash}`)).slice(0, 22);

/** 409 unless the confirmed rotation names the secret that is current now. */
async function stillCurrent(secretHash: string | null, from: string | undefined, what: string): Promise<void> {
  if (secretHash === null) return;
  if (from === undefined || from !== (await secretVersion(secretHash))) {
    throw new ApiError('conflict', `The ${what} was rotated since this rotation was confirmed (a page posted again?): nothing was rotated, and the ${what} shown before still works.`);
  }
}

const links = (c: Context<AppEnv>): AppsLinks => ({
  clients: areaPath(c, 'apps'),
  newClient: areaPath(c, 'apps', '/clients/new'),
  scimTokens: areaPath(c, 'apps', '/scim-tokens'),
  consents: areaPath(c, 'apps', '/consents'),
});

const clientPath = (c: Context<AppEnv>, client: Pick<OAuthClient, 'id'>) => areaPath(c, 'apps', `/clients/${encodeURIComponent(client.id)}`);
const tokenPath = (c: Context<AppEnv>, token: Pick<ScimToken, 'id'>) => areaPath(c, 'apps', `/scim-tokens/${encodeURIComponent(token.id)}`);
const consentsPath = (c: Context<AppEnv>, userId: string) => areaPath(c, 'apps', `/consents/${encodeURIComponent(userId)}`);

const admin = (c: Context<AppEnv>) => c.get('user').id;
const targetClient = (c: Context<AppEnv>) => clientToAdminister(c, c.req.param('clientId') ?? '');
const targetToken = (c: Context<AppEnv>) => scimTokenToAdminister(c, c.req.param('tokenId') ?? '');
const here = (c: Context<AppEnv>) => new URL(c.req.url).pathname;

function clientRow(k: OAuthClient): ClientRow {
  return { id: k.id, name: k.name, class: clientClass(k), authMethod: k.authMethod, firstParty: k.firstParty, disabled: k.disabledAt !== null, createdAt: k.createdAt };
}

function clientDetail(k: OAuthClient): ClientDetail {
  return {
    ...clientRow(k),
    source: k.source,
    redirectUris: k.redirectUris,
    postLogoutRedirectUris: k.postLogoutRedirectUris,
    grantTypes: k.grantTypes,
    allowedScopes: k.allowedScopes,
    allowedAudiences: k.allowedAudiences,
    backchannelLogoutUri: k.backchannelLogoutUri,
    keys: k.jwks === null ? null : k.jwks.keys.length,
    hasSecret: k.secretHash !== null,
    overlapEnd: overlapEnd(k),
    updatedAt: k.updatedAt,
    disabledAt: k.disabledAt,
  };
}

function tokenRow(t: ScimToken): ScimTokenRow {
  return { id: t.id, name: t.name, createdAt: t.createdAt, lastUsedAt: t.lastUsedAt, disabled: t.disabledAt !== null, overlapEnd: overlapEnd(t) };
}

const overlapLabel = (seconds: number) => OVERLAP_CHOICES.find((o) => o.seconds === seconds)?.label.toLowerCase() ?? `${seconds} seconds`;

/** What the old secret does after a rotation with `seconds` of overlap, in words. */
const overlapConsequence = (what: string, seconds: number) =>
  seconds === 0 ? `The current ${what} stops working at once: whatever uses it fails until it is given the new one.` : `The current ${what} keeps working for ${overlapLabel(seconds)}, then stops.`;

/**
 * The page showing a new secret, straight from the confirmed post (never in a URL); like every
 * page, `Cache-Control: no-store` and no referrer (ui/render.ts).
 */
function showSecretOnce(c: Context<AppEnv>, page: Omit<SecretShownProps, keyof ConsoleChrome | 'links'>): Response {
  return renderPage(c, (nonce, brand) => SecretShownPage({ ...consoleChrome(c, nonce, brand), links: links(c), ...page }));
}

/** A simple action on one target: confirmation, then the act and the notice. */
function confirmThen<T>(
  find: (c: Context<AppEnv>) => Promise<T>,
  ask: (target: T) => { title: string; consequences: string[]; label: string; danger: boolean },
  act: (c: Context<AppEnv>, target: T) => Promise<unknown>,
  back: (c: Context<AppEnv>, target: T) => string,
  notice: keyof typeof NOTICES,
) {
  return async (c: Context<AppEnv>) => {
    const target = await find(c);
    const { confirmed } = await readActionForm(c, {});
    if (!confirmed) {
      const q = ask(target);
      return confirmAction(c, { area: 'apps', title: q.title, consequences: q.consequences, action: here(c), confirmLabel: q.label, danger: q.danger, cancelHref: back(c, target) });
    }
    await act(c, target);
    return backWithNotice(c, back(c, target), notice);
  };
}

function renderForm(c: Context<AppEnv>, values: ClientFormValues, problems: Record<string, string>, status: 200 | 400) {
  return renderPage(
    c,
    (nonce, brand) =>
      ClientFormPage({
        ...consoleChrome(c, nonce, brand),
        links: links(c),
        action: areaPath(c, 'apps', '/clients/new'),
        values,
        problems,
        authMethods: AUTH_METHODS,
        grantTypes: GRANT_TYPES,
        scopes: KNOWN_SCOPES,
      }),
    status,
  );
}

/** The user's consents page (or the lookup page with `unknown` set). */
async function consentsPage(c: Context<AppEnv>, email: string, user: { id: string; email: string } | null, unknown: boolean) {
  const consents = user ? await viewConsents(c, user.id, admin(c)) : [];
  return renderPage(
    c,
    (nonce, brand) =>
      ConsentsPage({
        ...consoleChrome(c, nonce, brand),
        links: links(c),
        notice: noticeFrom(c, NOTICES),
        base: areaPath(c, 'apps', '/consents'),
        email,
        unknown,
        user: user && { id: user.id, email: user.email, consents, revokeBase: consentsPath(c, user.id), userPage: areaPath(c, 'users', `/${encodeURIComponent(user.id)}`) },
      }),
    unknown ? 404 : 200,
  );
}

export const consoleAppsRoutes = new Hono<AppEnv>()
  .get('/', async (c) => {
    const q = readQuery(c, listQuery);
    const found = await listClientsFor(c, { limit: PAGE_SIZE + 1, offset: (q.page - 1) * PAGE_SIZE, ofClass: q.kind }, admin(c));
    const base = areaPath(c, 'apps');
    const href = (kind: ClientClass | undefined, page = 1) => {
      const params = new URLSearchParams({ ...(kind ? { kind } : {}), ...(page > 1 ? { page: String(page) } : {}) }).toString();
      return params ? `${base}?${params}` : base;
    };
    return renderPage(c, (nonce, brand) =>
      ClientListPage({
        ...consoleChrome(c, nonce, brand),
        links: links(c),
        notice: noticeFrom(c, NOTICES),
        ofClass: q.kind ?? null,
        filters: [{ label: 'All', href: href(undefined), current: q.kind === undefined }, ...CLASSES.map((k) => ({ label: CLASS_LABELS[k], href: href(k), current: q.kind === k }))],
        clients: found.slice(0, PAGE_SIZE).map(clientRow),
        clientBase: areaPath(c, 'apps', '/clients'),
        page: q.page,
        previous: q.page > 1 ? href(q.kind, q.page - 1) : null,
        next: found.length > PAGE_SIZE && q.page < MAX_PAGE ? href(q.kind, q.page + 1) : null,
      }),
    );
  })
  .get('/clients/new', (c) => renderForm(c, EMPTY_FORM, {}, 200))
  .post('/clients/new', async (c) => {
    const { data, confirmed } = await readActionForm(c, registrationForm);
    const values = formValues(data);
    const { input, problems } = registrationInput(values);
    const outcome = registrationMetadata(c, input);
    const all = [...problems, ...(outcome.problems ?? [])];
    if (all.length > 0 || !outcome.metadata) return renderForm(c, values, problemsByField(all, input), 400);
    const m = outcome.metadata;
    if (!confirmed) {
      return confirmAction(c, {
        area: 'apps',
        title: `Register “${m.name}”?`,
        consequences: [
          `A ${m.kind} client authenticating with ${m.authMethod}, for ${m.grantTypes.join(', ')}.`,
          m.redirectUris.length ? `It may send people back to: ${m.redirectUris.join(', ')}.` : 'It has no redirect URIs (no one signs in to it).',
          m.allowedAudiences.length ? `Its tokens may be for: ${m.allowedAudiences.join(', ')}.` : 'Its tokens are for no resource of its own.',
          m.firstParty ? 'First-party: people are not asked to allow it.' : 'People are asked to allow it the first time.',
          m.authMethod === 'client_secret_basic' || m.authMethod === 'client_secret_post' ? 'Its secret is shown once, on the next page.' : 'It gets no secret.',
        ],
        action: here(c),
        fields: hiddenFields(data),
        confirmLabel: 'Register the client',
        danger: false,
        cancelHref: areaPath(c, 'apps'),
      });
    }
    const { client, secret } = await registerClient(c, m, admin(c));
    if (secret === null) return backWithNotice(c, clientPath(c, client), 'registered');
    return showSecretOnce(c, {
      current: 'clients',
      title: `“${client.name}” is registered`,
      label: 'Its client secret',
      secret,
      clientId: client.id,
      note: `Configure the app with its client id and this secret (${client.authMethod}).`,
      next: { href: clientPath(c, client), label: 'I have copied it: go to the client' },
    });
  })
  .get('/clients/:clientId', async (c) => {
    const client = await targetClient(c);
    await viewClient(c, client, admin(c));
    return renderPage(c, (nonce, brand) => ClientPage({ ...consoleChrome(c, nonce, brand), links: links(c), base: clientPath(c, client), notice: noticeFrom(c, NOTICES), client: clientDetail(client) }));
  })
  .post('/clients/:clientId/rotate-secret', async (c) => {
    const client = await targetClient(c);
    const { data, confirmed } = await readActionForm(c, rotationForm);
    if (!confirmed) {
      return confirmAction(c, {
        area: 'apps',
        title: `Rotate the secret of “${client.name}”?`,
        consequences: ['A new secret is generated and shown once, on the next page.', overlapConsequence('secret', data.overlap_seconds)],
        action: here(c),
        fields: { overlap_seconds: String(data.overlap_seconds), ...(client.secretHash === null ? {} : { from: await secretVersion(client.secretHash) }) },
        confirmLabel: 'Rotate the secret',
        danger: data.overlap_seconds === 0,
        cancelHref: clientPath(c, client),
      });
    }
    await stillCurrent(client.secretHash, data.from, 'secret');
    const rotated = await rotateSecret(c, client, data.overlap_seconds, admin(c));
    return showSecretOnce(c, {
      current: 'clients',
      title: `The secret of “${client.name}” is rotated`,
      label: 'Its new client secret',
      secret: rotated.secret,
      clientId: client.id,
      previous: { what: 'secret', until: rotated.overlapUntil },
      next: { href: clientPath(c, client), label: 'I have copied it: back to the client' },
    });
  })
  .post(
    '/clients/:clientId/disable',
    confirmThen(
      targetClient,
      (k) => ({
        title: `Disable “${k.name}”?`,
        consequences: ['The client is refused at once at every endpoint.', 'Every token it got is revoked: its users’ grants and its own service tokens.', 'You can enable it again; the revoked tokens stay revoked.'],
        label: 'Disable the client',
        danger: true,
      }),
      (c, k) => disableClientFor(c, k, admin(c)),
      clientPath,
      'disabled',
    ),
  )
  .post(
    '/clients/:clientId/enable',
    confirmThen(
      targetClient,
      (k) => ({ title: `Enable “${k.name}”?`, consequences: ['The client is accepted again.', 'Tokens revoked when it was disabled stay revoked: people sign in to it again.'], label: 'Enable the client', danger: false }),
      (c, k) => enableClientFor(c, k, admin(c)),
      clientPath,
      'enabled',
    ),
  )
  .get('/scim-tokens', async (c) => {
    const tokens = await listScimTokensFor(c, { limit: SCIM_TOKENS_SHOWN, offset: 0 }, admin(c));
    return renderPage(c, (nonce, brand) =>
      ScimTokenListPage({
        ...consoleChrome(c, nonce, brand),
        links: links(c),
        notice: noticeFrom(c, NOTICES),
        base: areaPath(c, 'apps', '/scim-tokens'),
        tokens: tokens.map(tokenRow),
        secretSet: c.get('config').SCIM_TOKEN !== undefined,
      }),
    );
  })
  .post('/scim-tokens/new', async (c) => {
    const { data, confirmed } = await readActionForm(c, { name: scimTokenName });
    if (!confirmed) {
      return confirmAction(c, {
        area: 'apps',
        title: `Create a SCIM token “${data.name}”?`,
        consequences: [
          'Whoever holds it can create, change, disable and delete the directory’s users and groups at the SCIM endpoint.',
          'It is shown once, on the next page; give it to the directory.',
        ],
        action: here(c),
        fields: { name: data.name },
        confirmLabel: 'Create the token',
        danger: false,
        cancelHref: areaPath(c, 'apps', '/scim-tokens'),
      });
    }
    const { token, text: value } = await createScimToken(c, data.name, admin(c));
    return showSecretOnce(c, {
      current: 'scim-tokens',
      title: `SCIM token “${token.name}” is created`,
      label: 'The bearer token',
      secret: value,
      note: `The directory sends it as “Authorization: Bearer …” to ${c.get('config').PUBLIC_URL}${c.get('config').AUTH_PREFIX}/scim/v2.`,
      next: { href: tokenPath(c, token), label: 'I have copied it: go to the token' },
    });
  })
  .get('/scim-tokens/:tokenId', async (c) => {
    const token = await targetToken(c);
    await viewScimToken(c, token, admin(c));
    return renderPage(c, (nonce, brand) =>
      ScimTokenPage({
        ...consoleChrome(c, nonce, brand),
        links: links(c),
        base: tokenPath(c, token),
        notice: noticeFrom(c, NOTICES),
        token: { ...tokenRow(token), createdBy: token.createdBy, disabledAt: token.disabledAt },
      }),
    );
  })
  .post('/scim-tokens/:tokenId/rotate', async (c) => {
    const token = await targetToken(c);
    const { data, confirmed } = await readActionForm(c, rotationForm);
    if (!confirmed) {
      return confirmAction(c, {
        area: 'apps',
        title: `Rotate the SCIM token “${token.name}”?`,
        consequences: ['A new token is generated and shown once, on the next page; give it to the directory.', overlapConsequence('token', data.overlap_seconds)],
        action: here(c),
        fields: { overlap_seconds: String(data.overlap_seconds), from: await secretVersion(token.secretHash) },
        confirmLabel: 'Rotate the token',
        danger: data.overlap_seconds === 0,
        cancelHref: tokenPath(c, token),
      });
    }
    await stillCurrent(token.secretHash, data.from, 'token');
    const rotated = await rotateScimToken(c, token, data.overlap_seconds, admin(c));
    return showSecretOnce(c, {
      current: 'scim-tokens',
      title: `SCIM token “${token.name}” is rotated`,
      label: 'The new bearer token',
      secret: rotated.text,
      note: 'Give it to the directory in place of the previous one.',
      previous: { what: 'token', until: rotated.overlapUntil },
      next: { href: tokenPath(c, token), label: 'I have copied it: back to the token' },
    });
  })
  .post(
    '/scim-tokens/:tokenId/disable',
    confirmThen(
      targetToken,
      (t) => ({ title: `Disable the SCIM token “${t.name}”?`, consequences: ['The directory’s requests with it are refused from the next one.', 'You can enable it again.'], label: 'Disable the token', danger: true }),
      (c, t) => disableScimToken(c, t, admin(c)),
      tokenPath,
      'token_disabled',
    ),
  )
  .post(
    '/scim-tokens/:tokenId/enable',
    confirmThen(
      targetToken,
      (t) => ({ title: `Enable the SCIM token “${t.name}”?`, consequences: ['The directory’s requests with it are accepted again.'], label: 'Enable the token', danger: false }),
      (c, t) => enableScimToken(c, t, admin(c)),
      tokenPath,
      'token_enabled',
    ),
  )
  .post(
    '/scim-tokens/:tokenId/delete',
    confirmThen(
      targetToken,
      (t) => ({
        title: `Delete the SCIM token “${t.name}”?`,
        consequences: ['The directory’s requests with it are refused from the next one; it cannot be brought back.', 'Without SCIM_TOKEN and any other token, the SCIM endpoint turns off.'],
        label: 'Delete the token',
        danger: true,
      }),
      (c, t) => removeScimToken(c, t, admin(c)),
      (c) => areaPath(c, 'apps', '/scim-tokens'),
      'token_deleted',
    ),
  )
  .get('/consents', async (c) => {
    const { email } = readQuery(c, consentQuery);
    if (email === '') return consentsPage(c, '', null, false);
    const user = await findUserByEmail(c.env.DB, email);
    return consentsPage(c, email, user, user === null);
  })
  .get('/consents/:id', async (c) => {
    const user = await targetUser(c, true);
    return consentsPage(c, user.email, user, false);
  })
  .post('/consents/:id/:clientId/revoke', async (c) => {
    const user = await targetUser(c);
    const clientId = c.req.param('clientId');
    const { confirmed } = await readActionForm(c, {});
    if (!confirmed) {
      const consent = (await consentedApps(c, user.id)).find((k) => k.clientId === clientId);
      return confirmAction(c, {
        area: 'apps',
        title: `Withdraw ${user.email}’s consent to “${consent?.name ?? clientId}”?`,
        consequences: [
          'Every grant the app holds for this user ends now, with its access and refresh tokens.',
          'The app must ask again, and the user allow it again, to act for them.',
        ],
        action: here(c),
        confirmLabel: 'Revoke the consent',
        danger: true,
        cancelHref: consentsPath(c, user.id),
      });
    }
    await withdrawAppConsent(c, user.id, clientId, { admin: admin(c) });
    return backWithNotice(c, consentsPath(c, user.id), 'consent_revoked');
  });

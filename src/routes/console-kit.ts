/**
 * What every area of the operators' console is built with (routes/console.ts mounts the areas
 * behind the console's guard): the list of areas, the page chrome, the confirmation step, the
 * notice after an action, and forms read with a schema.
 *
 * An action is two posts of one form: the first (no `confirm`) answers {@link confirmAction}'s
 * page and changes nothing; the second (`confirm=yes`, from that page) acts, is audited by the
 * function it calls, and answers {@link backWithNotice}: a 303 to a page that shows the notice.
 */
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../env';
import { readBody } from '../http/body';
import { badRequest } from '../http/errors';
import { ConfirmPage, type ConfirmPageProps, type ConsoleChrome } from '../ui/console-pages';
import { renderPage } from '../ui/render';

/**
 * The console's areas, in the order of its navigation. Each is served under
 * `{AUTH_PREFIX}/admin/console/<id>` by the routes routes/console.ts maps it to.
 */
export const CONSOLE_AREAS = [
  { id: 'users', title: 'Users', summary: 'Find a user; see their sign-in methods, sessions, groups, roles and recent events; disable, sign out, reset second factors, send a reset link, grant or revoke roles.' },
  { id: 'sessions', title: 'Sessions', summary: 'Live sessions across users, filtered by user, sign-in method, time, address or device; end one or many.' },
  { id: 'audit', title: 'Audit log', summary: 'Events by user, name, outcome and time, security events marked; export as NDJSON or CSV.' },
  { id: 'apps', title: 'Apps and machines', summary: 'OAuth clients (apps, public apps, services) and the directory’s SCIM tokens: register or create, rotate with an overlap, disable; the consents users gave to apps, and revoking them.' },
  { id: 'routes', title: 'Routes and policy', summary: 'The loaded routes: hosts, paths, origins and who each admits, in words; and “who can reach this?” for a user and a URL.' },
  { id: 'health', title: 'Health', summary: 'Configuration problems, signing keys and their ages, mail, Durable Object and KV reachability, rate-limit hits, and sign-ins over the last day.' },
] as const;

export type ConsoleAreaId = (typeof CONSOLE_AREAS)[number]['id'];

/** The console's home: `{AUTH_PREFIX}/admin`. */
export const consoleHome = (c: Context<AppEnv>) => `${c.get('config').AUTH_PREFIX}/admin`;

/** The path of an area's page: `{AUTH_PREFIX}/admin/console/<area><rest>`. */
export const areaPath = (c: Context<AppEnv>, area: ConsoleAreaId, rest = '') => `${consoleHome(c)}/console/${area}${rest}`;

/** Whether `path` (a pathname) is one of the console's (the home, or under `/admin/console`): step-up asks for a second factor there. */
export function isConsolePath(path: string, prefix: string): boolean {
  const home = `${prefix}/admin`;
  return path === home || path === `${home}/console` || path.startsWith(`${home}/console/`);
}

/** The chrome of every console page: brand and nonce come from renderPage. */
export function consoleChrome(c: Context<AppEnv>, nonce: string, brand: ConsoleChrome['brand']): ConsoleChrome {
  return {
    nonce,
    brand,
    home: consoleHome(c),
    admin: c.get('user').email,
    areas: CONSOLE_AREAS.map((a) => ({ id: a.id, title: a.title, summary: a.summary, href: areaPath(c, a.id) })),
  };
}

/** The one field every action form may carry besides its own: `confirm=yes` on the second post. */
const confirmField = { confirm: v.optional(v.picklist(['yes'], 'must be "yes"')) };

/**
 * Reads an action's form: its own `fields` and `confirm`. Anything else, or a JSON body, is a 400
 * (the console is for browsers; API clients have the JSON admin API).
 */
export async function readActionForm<F extends v.ObjectEntries>(c: Context<AppEnv>, fields: F) {
  const { kind, data } = await readBody(c, v.strictObject({ ...fields, ...confirmField }, 'is not a known field'));
  if (kind !== 'form') throw badRequest('The console takes HTML forms; API clients use the JSON admin API.');
  return { data, confirmed: data.confirm === 'yes' };
}

/** The confirmation page of an action not yet confirmed (200; nothing has changed). */
export function confirmAction(c: Context<AppEnv>, page: Omit<ConfirmPageProps, keyof ConsoleChrome>): Response {
  return renderPage(c, (nonce, brand) => ConfirmPage({ ...consoleChrome(c, nonce, brand), ...page }));
}

/** After an action: 303 to `path` with `?done=<notice>`, whose text the page takes from its own list. */
export function backWithNotice(c: Context<AppEnv>, path: string, notice: string): Response {
  c.header('cache-control', 'no-store');
  return c.redirect(`${path}?done=${encodeURIComponent(notice)}`, 303);
}

/** The notice of `?done=` from an area's own list of texts (never text from the URL). */
export function noticeFrom<K extends string>(c: Context<AppEnv>, notices: Record<K, string>): string | null {
  const done = c.req.query('done') ?? '';
  // Own keys only: `?done=constructor` must not find Object.prototype's.
  const known = (key: string): key is K => Object.hasOwn(notices, key);
  return known(done) ? notices[done] : null;
}

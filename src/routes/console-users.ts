/**
 * The console's Users area, mounted at `{AUTH_PREFIX}/admin/console/users` behind the console's
 * guard (routes/console.ts):
 *
 * - `GET  /?q=&page=`                       search by email or name, 25 a page
 * - `GET  /:id`                             one user: account, roles, sign-in methods and factors, sessions, groups, events
 * - `POST /:id/disable`, `/:id/enable`      disable (ending every session) or enable
 * - `POST /:id/sign-out`                    end every session
 * - `POST /:id/second-factors/reset`        remove the authenticator app, passkeys and recovery codes
 * - `POST /:id/password-reset`              mail a password reset link
 * - `POST /:id/roles/grant`, `/:id/roles/revoke`   `role=`: grant or revoke a stored role
 *
 * Each action is confirmed first (console-kit.ts) and done by the same function as the JSON
 * admin API's (auth/user-administration.ts), which audits it with the acting admin.
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import { directoryReads } from '../auth/directory-reads';
import { effectiveRoles } from '../auth/roles';
import { ADMIN_ROLE, checkRoleName, disableUser, enableUser, grantRole, mailPasswordReset, resetSecondFactors, revokeRole, searchUsers, signOutEverywhere, viewUser } from '../auth/user-administration';
import type { AppEnv } from '../env';
import { readQuery } from '../http/body';
import { mailEnabled } from '../mail/send';
import { enabledProviders } from '../providers/registry';
import { listPasskeys } from '../storage/passkeys';
import { scimGroupNamesOf } from '../storage/scim-memberships';
import { countUnusedRecoveryCodes, findTotpFactor } from '../storage/second-factors';
import type { User } from '../storage/users';
import { deviceLabel } from '../ui/device-label';
import { placeLabel } from '../ui/place-label';
import { UserPage, UserSearchPage, type UserDetail } from '../ui/console-users-pages';
import { renderPage } from '../ui/render';
import { targetUser } from './admin';
import { areaPath, backWithNotice, confirmAction, consoleChrome, noticeFrom, readActionForm } from './console-kit';

const PAGE_SIZE = 25;
const MAX_PAGE = 4000;

/** The notices after each action (`?done=`). */
const NOTICES = {
  disabled: 'The user is disabled and every session of theirs has ended.',
  enabled: 'The user is enabled: they can sign in again.',
  signed_out: 'Every session of the user has ended.',
  factors_reset: 'The user’s authenticator app, passkeys and recovery codes are removed. They were sent a notice.',
  reset_sent: 'A password reset link is on its way to the user.',
  role_granted: 'The role is granted. The user’s tokens carry it from their next refresh.',
  role_revoked: 'The role is revoked. The user’s tokens lose it at their next refresh.',
} as const;

const searchQuery = v.object({
  q: v.optional(v.pipe(v.string(), v.trim(), v.maxLength(254, 'is too long (254 characters at most)')), ''),
  page: v.optional(v.pipe(v.string(), v.regex(/^\d{1,4}$/, 'must be a page number'), v.transform(Number), v.minValue(1, 'must be a page number'), v.maxValue(MAX_PAGE, `must be at most ${MAX_PAGE}`)), '1'),
});

const roleField = { role_name: v.pipe(v.string('is required'), v.trim(), v.nonEmpty('is required'), v.maxLength(64, 'is too long')) };

const userPath = (c: Context<AppEnv>, user: Pick<User, 'id'>) => areaPath(c, 'users', `/${encodeURIComponent(user.id)}`);

/** What an admin sees of one user (audited as a view, as the JSON API's). */
async function userDetail(c: Context<AppEnv>, user: User): Promise<UserDetail> {
  const config = c.get('config');
  const [{ sessions, events, identities }, totp, recoveryCodesLeft, passkeys, directoryGroups] = await Promise.all([
    viewUser(c, user, c.get('user').id),
    findTotpFactor(directoryReads(c), user.id),
    countUnusedRecoveryCodes(directoryReads(c), user.id),
    listPasskeys(directoryReads(c), user.id),
    scimGroupNamesOf(c.env.DB, user.id),
  ]);
  const providerNames = new Map(enabledProviders(config).map((p) => [p.id, p.name]));
  const providerName = (id: string) => providerNames.get(id) ?? id;
  return {
    id: user.id,
    email: user.email,
    emailVerified: user.emailVerified,
    name: user.name,
    disabledAt: user.disabledAt,
    createdAt: user.createdAt,
    hasPassword: user.passwordHash !== null,
    roles: user.roles,
    grantedBySetting: effectiveRoles(user, config).filter((r) => !user.roles.includes(r)),
    identities: identities.map((i) => ({ provider: providerName(i.provider), email: i.email, linkedAt: i.createdAt, lastUsedAt: i.lastUsedAt })),
    totp: totp !== null && totp.confirmedAt !== null,
    recoveryCodesLeft,
    passkeys: passkeys.map((k) => ({ name: k.name, synced: k.deviceType === 'multiDevice', createdAt: k.createdAt, lastUsedAt: k.lastUsedAt })),
    sessions: sessions.map((s) => ({
      id: s.id,
      device: deviceLabel(s.userAgent),
      place: placeLabel(s.country),
      ip: s.ip,
      createdAt: s.createdAt,
      lastUsedAt: s.lastUsedAt,
      provider: s.provider ? providerName(s.provider) : null,
      methods: s.amr.length ? `methods: ${s.amr.join(', ')}` : '',
    })),
    directoryGroups,
    providerGroups: [...new Set(sessions.flatMap((s) => s.groups ?? []))].sort(),
    events: events.slice(0, 20).map((e) => ({ at: e.at, event: e.event, outcome: e.outcome, ip: e.ip })),
  };
}

/**
 * One action's route: the first post shows what it will do (`confirm`), the confirmed one acts
 * and comes back to the user's page with the notice.
 */
function userAction(
  confirm: (user: User) => { title: string; consequences: string[]; label: string; danger: boolean },
  act: (c: Context<AppEnv>, user: User, admin: string) => Promise<unknown>,
  notice: keyof typeof NOTICES,
) {
  return async (c: Context<AppEnv>) => {
    const user = await targetUser(c);
    const { confirmed } = await readActionForm(c, {});
    if (!confirmed) {
      const ask = confirm(user);
      return confirmAction(c, { area: 'users', title: ask.title, consequences: ask.consequences, action: new URL(c.req.url).pathname, confirmLabel: ask.label, danger: ask.danger, cancelHref: userPath(c, user) });
    }
    await act(c, user, c.get('user').id);
    return backWithNotice(c, userPath(c, user), notice);
  };
}

/** A role action: as {@link userAction}, with the `role` field checked before anything is asked. */
function roleAction(kind: 'grant' | 'revoke') {
  return async (c: Context<AppEnv>) => {
    const user = await targetUser(c);
    const { data, confirmed } = await readActionForm(c, roleField);
    checkRoleName(data.role_name);
    if (!confirmed) {
      const grant = kind === 'grant';
      // `admin` is every power of this console and the JSON API: its grant is asked as what it is.
      const makesAdmin = grant && data.role_name === ADMIN_ROLE;
      return confirmAction(c, {
        area: 'users',
        title: makesAdmin ? `Make ${user.email} an administrator?` : grant ? `Grant “${data.role_name}” to ${user.email}?` : `Revoke “${data.role_name}” from ${user.email}?`,
        consequences: makesAdmin
          ? [
              `${user.email} becomes an administrator: the console and the JSON admin API, at once (the role is read from the directory on every request).`,
              'They can disable any user, other administrators and you included, reset second factors, and grant or revoke any role.',
            ]
          : grant
            ? [`${user.email} gains the role “${data.role_name}” (stored in the directory).`, 'Routes and apps that admit this role admit them from their next token refresh.']
            : [`${user.email} loses the role “${data.role_name}”.`, 'Their tokens lose it at the next refresh (within the access token lifetime).'],
        action: new URL(c.req.url).pathname,
        fields: { role_name: data.role_name },
        confirmLabel: makesAdmin ? `Make ${user.email} an administrator` : grant ? `Grant ${data.role_name}` : `Revoke ${data.role_name}`,
        danger: makesAdmin || !grant,
        cancelHref: userPath(c, user),
      });
    }
    if (kind === 'grant') await grantRole(c, user, data.role_name, c.get('user').id);
    else await revokeRole(c, user, data.role_name, c.get('user').id);
    return backWithNotice(c, userPath(c, user), kind === 'grant' ? 'role_granted' : 'role_revoked');
  };
}

export const consoleUsersRoutes = new Hono<AppEnv>()
  .get('/', async (c) => {
    const q = readQuery(c, searchQuery);
    const found = await searchUsers(c, { search: q.q || undefined, limit: PAGE_SIZE + 1, offset: (q.page - 1) * PAGE_SIZE }, c.get('user').id);
    const base = areaPath(c, 'users');
    const pageHref = (page: number) => `${base}?${new URLSearchParams({ ...(q.q ? { q: q.q } : {}), page: String(page) })}`;
    const users = found.slice(0, PAGE_SIZE).map((u) => ({ id: u.id, email: u.email, name: u.name, disabled: u.disabledAt !== null, roles: effectiveRoles(u, c.get('config')), createdAt: u.createdAt }));
    return renderPage(c, (nonce, brand) =>
      UserSearchPage({
        ...consoleChrome(c, nonce, brand),
        base,
        q: q.q,
        page: q.page,
        users,
        previous: q.page > 1 ? pageHref(q.page - 1) : null,
        next: found.length > PAGE_SIZE && q.page < MAX_PAGE ? pageHref(q.page + 1) : null,
      }),
    );
  })
  .get('/:id', async (c) => {
    const user = await targetUser(c, true);
    const detail = await userDetail(c, user);
    const config = c.get('config');
    return renderPage(c, (nonce, brand) =>
      UserPage({
        ...consoleChrome(c, nonce, brand),
        base: userPath(c, user),
        back: areaPath(c, 'users'),
        notice: noticeFrom(c, NOTICES),
        user: detail,
        self: user.id === c.get('user').id,
        canMailReset: mailEnabled(config) && user.passwordHash !== null,
      }),
    );
  })
  .post(
    '/:id/disable',
    userAction(
      (u) => ({ title: `Disable ${u.email}?`, consequences: [`${u.email} can no longer sign in.`, 'Every session of theirs ends now, and the tokens of those sessions stop working.', 'You can enable the account again later; ended sessions stay ended.'], label: 'Disable the user', danger: true }),
      disableUser,
      'disabled',
    ),
  )
  .post(
    '/:id/enable',
    userAction((u) => ({ title: `Enable ${u.email}?`, consequences: [`${u.email} can sign in again.`], label: 'Enable the user', danger: false }), enableUser, 'enabled'),
  )
  .post(
    '/:id/sign-out',
    userAction(
      (u) => ({ title: `Sign ${u.email} out everywhere?`, consequences: ['Every session of theirs ends now, on every device, with the tokens of those sessions.', 'The account stays enabled: they can sign in again.'], label: 'Sign out everywhere', danger: true }),
      signOutEverywhere,
      'signed_out',
    ),
  )
  .post(
    '/:id/second-factors/reset',
    userAction(
      (u) => ({
        title: `Reset the second factors of ${u.email}?`,
        consequences: ['Their authenticator app, passkeys and recovery codes are removed (a lost phone).', 'They are mailed a notice. Their sessions stay; their next sign-in asks for no second factor until they set one up.'],
        label: 'Reset second factors',
        danger: true,
      }),
      resetSecondFactors,
      'factors_reset',
    ),
  )
  .post(
    '/:id/password-reset',
    userAction(
      (u) => ({ title: `Send ${u.email} a password reset link?`, consequences: [`A link to choose a new password is mailed to ${u.email}.`, 'Their password stays as it is until they use the link.'], label: 'Send the link', danger: false }),
      mailPasswordReset,
      'reset_sent',
    ),
  )
  .post('/:id/roles/grant', roleAction('grant'))
  .post('/:id/roles/revoke', roleAction('revoke'));

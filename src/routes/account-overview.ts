/**
 * Everything the account page (`GET /account`, routes/account.ts) shows, loaded in one place:
 * the profile, sessions and linked identities, the self-service sections (ui/account-security.tsx),
 * the "Second factor" card (ui/second-factors-card.tsx), the passkeys card
 * (ui/passkeys-section.tsx), and the banner of a `?done=` key.
 *
 * The form actions (routes/account.ts, account-changes.ts, linked-identities.ts,
 * second-factors.ts, passkeys.ts) stay where they are and come back here through
 * {@link backToAccount} with one of the keys of {@link ACCOUNT_NOTICES}: the banner's text is
 * fixed here, never taken from the URL.
 */
import type { Context } from 'hono';
import { consentedApps } from '../auth/app-consents';
import { passkeysAvailable } from '../auth/passkeys';
import { isRecentSignIn } from '../auth/recent-sign-in';
import { effectiveRoles } from '../auth/roles';
import { mfaRequiredByRole, totpAvailable } from '../auth/second-factor-status';
import { sessionsOf } from '../auth/authenticate';
import { directoryReads, userFromReplica } from '../auth/directory-reads';
import type { AppEnv, AuthUser } from '../env';
import { safeReturnTo } from '../http/return-to';
import { mailEnabled } from '../mail/send';
import { enabledProviders } from '../providers/registry';
import { listUserIdentities, type Identity } from '../storage/identities';
import { listPasskeys } from '../storage/passkeys';
import { countUnusedRecoveryCodes, findTotpFactor } from '../storage/second-factors';
import { listActiveSessions } from '../storage/sessions';
import type { User } from '../storage/users';
import type { AccountApp, AccountPageProps } from '../ui/account-page';
import type { AccountSecurityProps } from '../ui/account-security';
import { deviceLabel } from '../ui/device-label';
import { placeLabel } from '../ui/place-label';
import type { PasskeysSectionProps } from '../ui/passkeys-section';
import type { SecondFactorsCardProps } from '../ui/second-factors-card';
import { nowSeconds as now } from '../util/time';

/** The account page's banners (`?done=`), one per form action that comes back to it. */
export const ACCOUNT_NOTICES = {
  // Sessions (routes/account.ts)
  session_ended: 'That session has been signed out.',
  // Passkeys (routes/passkeys.ts)
  passkey_added: 'Your passkey has been added.',
  passkey_renamed: 'Your passkey has been renamed.',
  passkey_removed: 'Your passkey has been removed.',
  passkey_reauth: 'To add or remove a passkey, sign out and sign in again first (your sign-in is not recent enough).',
  // Authenticator app (routes/second-factors.ts)
  totp_on: 'Your authenticator app is on.',
  totp_removed: 'Your authenticator app and recovery codes have been removed.',
  totp_already_on: 'An authenticator app is already set up. Remove it first to set up another.',
  // Password and email address (routes/account-changes.ts)
  password_changed: 'Your password has been changed. Your other sessions were signed out.',
  add_password_sent: 'Check your inbox: we sent you a link to set a password.',
  email_link_sent: 'Check the inbox of the new address: the change takes effect once you follow the link there.',
  // Linked identities (routes/linked-identities.ts)
  identity_unlinked: 'The sign-in method has been unlinked.',
  identity_linked: 'The sign-in method has been linked.',
  // Apps (routes/account-apps.ts)
  app_revoked: 'The app’s access has been taken away. It must ask you again to use your account.',
} as const satisfies Record<string, string>;

export type AccountNotice = keyof typeof ACCOUNT_NOTICES;

// Own keys only: `?done=constructor` must not find Object.prototype's.
const isAccountNotice = (done: string): done is AccountNotice => Object.hasOwn(ACCOUNT_NOTICES, done);

/** A form action's answer to a browser: 303 to the account page with the banner of `notice`. */
export function backToAccount(c: Context<AppEnv>, notice: AccountNotice): Response {
  c.header('cache-control', 'no-store');
  return c.redirect(`${c.get('config').AUTH_PREFIX}/account?done=${notice}`, 303);
}

/** The account page's props, except what rendering adds (nonce, brand). */
export type AccountOverview = Omit<AccountPageProps, 'nonce' | 'brand'>;

/**
 * Loads the account page of the signed-in user `auth`; null when the account is gone or
 * disabled, or the session has ended (the page then asks to sign in again).
 */
export async function loadAccountOverview(c: Context<AppEnv>, auth: AuthUser): Promise<AccountOverview | null> {
  const t = now();
  const [user, sessions, identities, secondFactors, apps] = await Promise.all([
    userFromReplica(c, auth.id),
    listActiveSessions(sessionsOf(c, auth.id), t),
    listUserIdentities(directoryReads(c), auth.id),
    secondFactorsCard(c, auth.id),
    appsWithConsent(c, auth.id),
  ]);
  const current = sessions.find((s) => s.id === auth.sessionId);
  if (!user || user.disabledAt !== null || !current) return null;
  const config = c.get('config');
  const providerNames = new Map(enabledProviders(config).map((p) => [p.id, p.name]));
  const done = c.req.query('done') ?? '';
  const passkeys = passkeysAvailable(config) ? await passkeysCard(c, user.id, auth.authTime) : undefined;
  return {
    backHref: safeReturnTo(c.req.query('return_to'), config),
    prefix: config.AUTH_PREFIX,
    notice: isAccountNotice(done) ? ACCOUNT_NOTICES[done] : null,
    security: selfServiceSections(c, user, identities),
    user: {
      email: user.email,
      emailVerified: user.emailVerified,
      name: user.name,
      roles: effectiveRoles(user, config),
      createdAt: user.createdAt,
      hasPassword: user.passwordHash !== null,
    },
    secondFactors: { ...secondFactors, required: mfaRequiredByRole(user, config) },
    providers: identities.map((i) => ({ name: providerNames.get(i.provider) ?? i.provider, email: i.email, linkedAt: i.createdAt })),
    sessions: sessions.map((s) => ({
      id: s.id,
      device: deviceLabel(s.userAgent),
      place: placeLabel(s.country),
      ip: s.ip,
      createdAt: s.createdAt,
      lastUsedAt: s.lastUsedAt,
      current: s.id === auth.sessionId,
      provider: s.provider ? (providerNames.get(s.provider) ?? s.provider) : null,
    })),
    passkeys,
    apps,
  };
}

/** The apps the user allowed (their consents), with the app's name while it is registered. */
async function appsWithConsent(c: Context<AppEnv>, userId: string): Promise<AccountApp[]> {
  return (await consentedApps(c, userId)).map((k) => ({ clientId: k.clientId, name: k.name, scopes: k.scopes, grantedAt: k.grantedAt }));
}

/** The self-service sections: sign-in methods, password, email address, deletion. */
function selfServiceSections(c: Context<AppEnv>, user: User, identities: Identity[]): AccountSecurityProps {
  const config = c.get('config');
  const providers = enabledProviders(config);
  const names = new Map(providers.map((p) => [p.id, p.name]));
  return {
    prefix: config.AUTH_PREFIX,
    email: user.email,
    emailVerified: user.emailVerified,
    hasPassword: user.passwordHash !== null,
    mail: mailEnabled(config),
    passwordLogin: config.PASSWORD_LOGIN === 'enabled',
    identities: identities.map((i) => ({ provider: i.provider, subject: i.subject, name: names.get(i.provider) ?? i.provider, email: i.email })),
    linkable: providers.filter((p) => !identities.some((i) => i.provider === p.id)),
    minPasswordLength: config.PASSWORD_MIN_LENGTH,
  };
}

/** The "Second factor" card, except `required` (which needs the user's roles). */
async function secondFactorsCard(c: Context<AppEnv>, userId: string): Promise<Omit<SecondFactorsCardProps, 'required'>> {
  const [factor, left] = await Promise.all([findTotpFactor(directoryReads(c), userId), countUnusedRecoveryCodes(directoryReads(c), userId)]);
  return {
    prefix: c.get('config').AUTH_PREFIX,
    available: totpAvailable(c.get('config')),
    totp: factor !== null && factor.confirmedAt !== null,
    recoveryCodesLeft: left,
  };
}

/** The passkeys card: the user's passkeys, and whether the sign-in is recent enough to add or remove one. */
async function passkeysCard(c: Context<AppEnv>, userId: string, authTime: number): Promise<PasskeysSectionProps> {
  const passkeys = await listPasskeys(directoryReads(c), userId);
  return {
    prefix: c.get('config').AUTH_PREFIX,
    recentSignIn: isRecentSignIn(authTime, now(), c.get('config').RECENT_AUTH_SECONDS),
    passkeys: passkeys.map((p) => ({ id: p.id, name: p.name, synced: p.deviceType === 'multiDevice', createdAt: p.createdAt, lastUsedAt: p.lastUsedAt })),
  };
}

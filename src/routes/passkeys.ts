/**
 * Passkeys, under `AUTH_PREFIX/passkeys`:
 *
 * - `GET    /passkeys`                     the signed-in user's passkeys (JSON)
 * - `POST   /passkeys/register/options`    options for `navigator.credentials.create()` (recent sign-in)
 * - `POST   /passkeys/register`            `{credential, name?}`: verify and store (recent sign-in)
 * - `PATCH  /passkeys/:id`                 `{name}`: rename
 * - `DELETE /passkeys/:id`                 remove (recent sign-in)
 * - `POST   /passkeys/:id/rename`, `/passkeys/:id/remove`   the account page's form twins (303)
 * - `POST   /passkeys/login/options`       options for a passkey sign-in (discoverable credentials)
 * - `POST   /passkeys/login`               `{credential, session?}`: sign in (token or cookie mode)
 * - `GET    /passkeys/client.js`           the pages' small browser script
 *
 * The WebAuthn work is auth/passkeys.ts, which loads `@simplewebauthn/server` on first use.
 */
import { Hono, type Context } from 'hono';
import * as v from 'valibot';
import type { MiddlewareHandler } from 'hono';
import {
  authenticationCredentialSchema,
  passkeysAvailable,
  authenticationOptions,
  finishRegistration,
  passkeyAmr,
  passkeyNameSchema,
  registrationCredentialSchema,
  registrationOptions,
  verifyPasskeyAssertion,
} from '../auth/passkeys';
import { recordEvent } from '../auth/events';
import { sendAccountNotice } from '../mail/delivery';
import { isRecentSignIn } from '../auth/recent-sign-in';
import { signIn } from '../auth/sign-in';
import { sessionsOf } from '../auth/authenticate';
import type { AppEnv } from '../env';
import { readBody } from '../http/body';
import { ApiError, invalidToken, toApiError } from '../http/errors';
import { safeReturnTo } from '../http/return-to';
import { checkRateLimit, rateLimit } from '../middleware/rate-limit';
import { requireAuth } from '../middleware/require-auth';
import { wantsHtml } from '../http/client';
import { sameOrigin } from '../middleware/same-origin';
import { deletePasskey, listPasskeys, renamePasskey, type Passkey } from '../storage/passkeys';
import { findSession } from '../storage/sessions';
import { findUserById, type User } from '../storage/users';
import { deviceLabel } from '../ui/device-label';
import { PASSKEYS_SCRIPT } from '../ui/passkeys-script';
import { nowSeconds as now } from '../util/time';
import { backToAccount } from './account-overview';
import { signInReply } from './sign-in-reply';

const REAUTH = 'To add or remove a passkey, sign in again first: this needs a recent sign-in (RECENT_AUTH_SECONDS).';

function publicPasskey(p: Passkey) {
  return {
    id: p.id,
    name: p.name,
    device_type: p.deviceType,
    backed_up: p.backedUp,
    transports: p.transports,
    created_at: p.createdAt,
    last_used_at: p.lastUsedAt,
  };
}

/** The signed-in user (live, not disabled) and whether their sign-in is recent; 401 otherwise. */
async function signedInUser(c: Context<AppEnv>): Promise<{ user: User; recent: boolean }> {
  const auth = c.get('user');
  const [user, session] = await Promise.all([findUserById(c.env.DB, auth.id), findSession(sessionsOf(c, auth.id), auth.sessionId)]);
  if (!user || user.disabledAt !== null || !session || session.revokedAt !== null) throw invalidToken('The session has ended.');
  // auth_time, not the session's age: a step-up makes an old session's sign-in recent again.
  return { user, recent: isRecentSignIn(auth.authTime, now(), c.get('config').RECENT_AUTH_SECONDS) };
}

async function recentlySignedInUser(c: Context<AppEnv>): Promise<User> {
  const { user, recent } = await signedInUser(c);
  if (!recent) throw new ApiError('forbidden', REAUTH, { fields: { reason: 'reauthenticate' } });
  return user;
}

const registerSchema = v.strictObject({ credential: registrationCredentialSchema, name: v.optional(passkeyNameSchema) }, 'is not a known field');
const renameSchema = v.strictObject({ name: passkeyNameSchema }, 'is not a known field');
const loginSchema = v.strictObject(
  {
    credential: authenticationCredentialSchema,
    session: v.optional(v.picklist(['cookie', 'token'], 'must be "cookie" or "token"')),
    // The sign-in page's script: where to go after a second factor, if one is owed.
    return_to: v.optional(v.pipe(v.string('must be a string'), v.maxLength(2048, 'is too long'))),
  },
  'is not a known field',
);

const idOk = (id: string) => id.length > 0 && id.length <= 1400;
async function removePasskey(c: Context<AppEnv>, user: User, id: string): Promise<void> {
  // The recovery codes go with the last second factor (same transaction).
  const removed = idOk(id) ? await deletePasskey(c.env.DB, user.id, id) : null;
  if (!removed) throw new ApiError('not_found', 'No such passkey.');
  await recordEvent(c, { event: 'passkey_removed', outcome: 'success', userId: user.id, detail: { credential: id.slice(0, 16), recovery_codes: removed.recoveryCodes } });
  sendAccountNotice(c, user, 'passkey_removed');
}

/**
 * For the account page's forms: a browser without a valid session is sent to sign in (and back
 * to the account page), as routes/account.ts does; other clients get the usual 401.
 */
const formAuth = () =>
  requireAuth({
    onUnauthenticated: (c) => {
      if (!wantsHtml(c)) return undefined;
      const prefix = c.get('config').AUTH_PREFIX;
      c.header('cache-control', 'no-store');
      return c.redirect(`${prefix}/login?return_to=${encodeURIComponent(`${prefix}/account`)}`, 302);
    },
  });

/** `PASSKEYS=disabled` (or a `PUBLIC_URL` that cannot be a relying party id): every endpoint refuses. */
const passkeysOn: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!passkeysAvailable(c.get('config'))) throw new ApiError('forbidden', 'Passkeys are not enabled on this gateway.');
  await next();
};

export const passkeyRoutes = new Hono<AppEnv>()
  .use('/passkeys', passkeysOn)
  .use('/passkeys/*', passkeysOn)
  .get('/passkeys/client.js', (c) => {
    c.header('content-type', 'text/javascript; charset=utf-8');
    c.header('cache-control', 'public, max-age=300');
    return c.body(PASSKEYS_SCRIPT);
  })
  .get('/passkeys', requireAuth(), async (c) => {
    const { user } = await signedInUser(c);
    c.header('cache-control', 'no-store');
    return c.json({ passkeys: (await listPasskeys(c.env.DB, user.id)).map(publicPasskey) });
  })
  .post('/passkeys/register/options', sameOrigin(), requireAuth(), async (c) => {
    const user = await recentlySignedInUser(c);
    c.header('cache-control', 'no-store');
    return c.json(await registrationOptions(c, user));
  })
  .post('/passkeys/register', sameOrigin(), requireAuth(), async (c) => {
    const user = await recentlySignedInUser(c);
    const { data } = await readBody(c, registerSchema);
    const name = data.name ?? deviceLabel(c.req.header('user-agent') ?? null);
    const passkey = await finishRegistration(c, user, data.credential, name);
    // A first second factor gets its recovery codes, shown this once (as for an authenticator app).
    const { recoveryCodesIfNone } = await import('../auth/second-factor');
    const recoveryCodes = await recoveryCodesIfNone(c, user);
    sendAccountNotice(c, user, 'passkey_added');
    c.header('cache-control', 'no-store');
    return c.json({ passkey: publicPasskey(passkey), ...(recoveryCodes ? { recovery_codes: recoveryCodes } : {}) }, 201);
  })
  .post('/passkeys/login/options', sameOrigin({ always: true }), rateLimit('passkey'), async (c) => {
    c.header('cache-control', 'no-store');
    return c.json(await authenticationOptions(c, null));
  })
  .post('/passkeys/login', sameOrigin({ always: true }), async (c) => {
    try {
      const { data } = await readBody(c, loginSchema);
      const { user, passkey, userVerified } = await verifyPasskeyAssertion(c, data.credential, null);
      // RFC 8176: hwk (device-bound) or swk (synced), user presence, and mfa when the device
      // verified the user. Without user verification a passkey proves possession only: one
      // factor, under the same policy as a password (docs/design.md "Second factors").
      const amr = passkeyAmr({ deviceType: passkey.deviceType, userVerified });
      const session = data.session === 'cookie' ? 'cookie' : 'token';
      const outcome = await signIn(c, {
        user,
        amr,
        provider: 'passkey',
        mode: session,
        // The page's script sends return_to and follows the 303 to the second-factor page.
        pendingMode: session === 'cookie' && data.return_to !== undefined ? 'form' : session,
        returnTo: safeReturnTo(data.return_to, c.get('config')),
        detail: { credential: passkey.id.slice(0, 16), user_verified: userVerified },
      });
      return await signInReply(c, outcome);
    } catch (e) {
      const err = toApiError(e);
      if (err.status === 400 || err.status === 401 || err.status === 403) {
        const reason = err.extra.fields?.reason;
        await recordEvent(c, { event: 'login', outcome: 'failure', detail: { method: 'passkey', reason: typeof reason === 'string' ? reason : err.code } });
        // Every refused assertion counts against the per-IP limit: past it, the answer is 429.
        await checkRateLimit(c, 'passkey');
      }
      throw e;
    }
  })
  .patch('/passkeys/:id', sameOrigin(), requireAuth(), async (c) => {
    const { user } = await signedInUser(c);
    const { data } = await readBody(c, renameSchema);
    const id = c.req.param('id');
    if (!idOk(id) || !(await renamePasskey(c.env.DB, user.id, id, data.name))) throw new ApiError('not_found', 'No such passkey.');
    const renamed = (await listPasskeys(c.env.DB, user.id)).find((p) => p.id === id);
    c.header('cache-control', 'no-store');
    return c.json({ passkey: renamed ? publicPasskey(renamed) : null });
  })
  .delete('/passkeys/:id', sameOrigin(), requireAuth(), async (c) => {
    const user = await recentlySignedInUser(c);
    await removePasskey(c, user, c.req.param('id'));
    c.header('cache-control', 'no-store');
    return c.json({ ok: true });
  })
  .post('/passkeys/:id/rename', sameOrigin({ always: true }), formAuth(), async (c) => {
    const { user } = await signedInUser(c);
    const { data } = await readBody(c, renameSchema);
    const id = c.req.param('id');
    if (!idOk(id) || !(await renamePasskey(c.env.DB, user.id, id, data.name))) throw new ApiError('not_found', 'No such passkey.');
    return backToAccount(c, 'passkey_renamed');
  })
  .post('/passkeys/:id/remove', sameOrigin({ always: true }), formAuth(), async (c) => {
    const { user, recent } = await signedInUser(c);
    if (!recent) return backToAccount(c, 'passkey_reauth');
    await removePasskey(c, user, c.req.param('id'));
    return backToAccount(c, 'passkey_removed');
  });

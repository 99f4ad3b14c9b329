/**
 * Turning a sign-in outcome (auth/sign-in.ts) into the reply, the one place that does: a session
 * as a 303 with cookies (forms), cookie JSON or token JSON; a pending second factor as a 303 to
 * `AUTH_PREFIX/mfa` (forms) or 401 `mfa_required` (JSON, with `mfa_token` in token mode; in
 * cookie mode the handle travels only in its cookie). Also the public user and session shapes,
 * which the session routes share. In routes/, not http/: it reads auth/'s outcome and roles.
 */
import type { Context } from 'hono';
import type { SignInOutcome } from '../auth/sign-in';
import { effectiveRoles } from '../auth/roles';
import type { IssuedTokens } from '../auth/sessions';
import type { AppEnv } from '../env';
import { clearMfaCookie, setMfaCookie, setSessionCookies } from '../http/cookies';
import type { Session } from '../storage/sessions';
import type { User } from '../storage/users';
import { nowSeconds } from '../util/time';

export function publicUser(c: Context<AppEnv>, user: User) {
  return {
    id: user.id,
    email: user.email,
    email_verified: user.emailVerified,
    name: user.name,
    avatar_url: user.avatarUrl,
    roles: effectiveRoles(user, c.get('config')),
    created_at: user.createdAt,
  };
}

export function publicSession(session: Session, currentSessionId?: string) {
  return {
    id: session.id,
    created_at: session.createdAt,
    last_used_at: session.lastUsedAt,
    expires_at: session.expiresAt,
    user_agent: session.userAgent,
    ip: session.ip,
    country: session.country,
    provider: session.provider,
    amr: session.amr,
    auth_time: session.authTime,
    current: session.id === currentSessionId,
  };
}

export type ClientMode = 'cookie' | 'token';

/**
 * JSON for tokens just issued (a sign-in or a refresh). Cookie mode: tokens only in cookies.
 * Token mode: tokens in the body, as docs/design.md's "Token mode". `fields` join the body.
 */
export function signedInResponse(c: Context<AppEnv>, user: User, tokens: IssuedTokens, mode: ClientMode, status: 200 | 201 = 200, fields: Record<string, unknown> = {}) {
  c.header('cache-control', 'no-store');
  if (mode === 'cookie') {
    setSessionCookies(c, tokens.accessToken, tokens.refreshToken, tokens.sessionExpiresAt - nowSeconds());
    return c.json({ user: publicUser(c, user), session: publicSession(tokens.session, tokens.session.id), expires_in: tokens.expiresIn, ...fields }, status);
  }
  return c.json({ token_type: 'Bearer', access_token: tokens.accessToken, expires_in: tokens.expiresIn, refresh_token: tokens.refreshToken, user: publicUser(c, user), ...fields }, status);
}

export interface SignInReplyOptions {
  /** 201 for a registration that signed in. */
  status?: 200 | 201;
  /** Extra JSON fields for a session (recovery codes shown once). */
  fields?: Record<string, unknown>;
  /** A form's page instead of the 303 to `return_to`, once the session cookies are set. */
  formPage?: () => Response | Promise<Response>;
}

/** The reply to a sign-in outcome, the way the client asked (the outcome's `mode`). */
export async function signInReply(c: Context<AppEnv>, outcome: SignInOutcome, options: SignInReplyOptions = {}): Promise<Response> {
  const config = c.get('config');
  c.header('cache-control', 'no-store');
  if (outcome.kind === 'pending') {
    if (outcome.mode !== 'token') setMfaCookie(c, outcome.handle, outcome.ttl);
    if (outcome.mode === 'form') return c.redirect(`${config.AUTH_PREFIX}/mfa`, 303);
    const enrol = outcome.purpose === 'enrol';
    const description = enrol ? 'Your account must set up a second factor before signing in.' : 'Enter a code from your authenticator app or a recovery code, or use your passkey.';
    c.header('www-authenticate', `Bearer error="invalid_request", error_description="${description}"`);
    return c.json(
      {
        error: 'mfa_required',
        error_description: description,
        enrolment_required: enrol,
        ...(outcome.mode === 'token' ? { mfa_token: outcome.handle } : {}),
        expires_in: outcome.ttl,
        mfa_url: `${config.PUBLIC_URL}${config.AUTH_PREFIX}/mfa`,
      },
      401,
    );
  }
  if (outcome.spentPending) clearMfaCookie(c);
  const { tokens } = outcome;
  if (outcome.mode === 'form') {
    setSessionCookies(c, tokens.accessToken, tokens.refreshToken, tokens.sessionExpiresAt - nowSeconds());
    return options.formPage ? options.formPage() : c.redirect(outcome.returnTo, 303);
  }
  return signedInResponse(c, outcome.user, tokens, outcome.mode, options.status, options.fields);
}

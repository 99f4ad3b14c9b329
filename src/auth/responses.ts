/**
 * Shapes shared by several routes: the public user object and the signed-in response. In auth/,
 * not http/, because they need the user's effective roles and the issued session tokens.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../env';
import { setSessionCookies } from '../http/cookies';
import type { Session } from '../storage/sessions';
import type { User } from '../storage/users';
import { nowSeconds } from '../util/time';
import { effectiveRoles } from './roles';
import type { IssuedTokens } from './sessions';

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
    provider: session.provider,
    amr: session.amr,
    auth_time: session.authTime,
    current: session.id === currentSessionId,
  };
}

export type ClientMode = 'cookie' | 'token';

/**
 * Answers a successful sign-in or refresh. Cookie mode: tokens only in cookies. Token mode:
 * tokens in the JSON body, as docs/design.md's "Token mode".
 */
export function signedInResponse(c: Context<AppEnv>, user: User, tokens: IssuedTokens, mode: ClientMode, status: 200 | 201 = 200) {
  c.header('cache-control', 'no-store');
  if (mode === 'cookie') {
    setSessionCookies(c, tokens.accessToken, tokens.refreshToken, tokens.sessionExpiresAt - nowSeconds());
    return c.json({ user: publicUser(c, user), session: publicSession(tokens.session, tokens.session.id), expires_in: tokens.expiresIn }, status);
  }
  return c.json(
    {
      token_type: 'Bearer',
      access_token: tokens.accessToken,
      expires_in: tokens.expiresIn,
      refresh_token: tokens.refreshToken,
      user: publicUser(c, user),
    },
    status,
  );
}

/**
 * GitHub is plain OAuth 2.0 (no ID token): the account comes from `GET /user`, the email from
 * `GET /user/emails`, and only the primary address that GitHub marks verified is used.
 */
import * as v from 'valibot';
import { fetchJson } from './http';
import type { ProviderProfile } from './types';

const API = 'https://api.github.com';
const ACCEPT = 'application/vnd.github+json';

const userSchema = v.object({
  id: v.pipe(v.number(), v.integer(), v.minValue(1)),
  login: v.string(),
  name: v.optional(v.nullable(v.string())),
  avatar_url: v.optional(v.nullable(v.string())),
});

const emailsSchema = v.array(v.object({ email: v.string(), primary: v.boolean(), verified: v.boolean() }));

export async function fetchGitHubProfile(accessToken: string, deadline: AbortSignal): Promise<ProviderProfile> {
  const [user, emails] = await Promise.all([
    fetchJson(`${API}/user`, userSchema, 'GitHub', { bearer: accessToken, accept: ACCEPT, deadline }),
    fetchJson(`${API}/user/emails`, emailsSchema, 'GitHub', { bearer: accessToken, accept: ACCEPT, deadline }),
  ]);
  const primary = emails.find((e) => e.primary && e.verified);
  return {
    // The numeric id: logins can be renamed and then claimed by someone else.
    subject: String(user.id),
    // Never shortened: the account layer refuses an address that is not a usable email.
    email: primary?.email ?? null,
    emailVerified: primary !== undefined,
    name: user.name || user.login,
    avatarUrl: user.avatar_url ?? null,
  };
}

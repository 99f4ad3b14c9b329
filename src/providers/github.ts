/**
 * GitHub is plain OAuth 2.0 (no ID token): the account comes from `GET /user`, the email from
 * `GET /user/emails`, and only the primary address that GitHub marks verified is used. Groups
 * (only when a route needs them, with the `read:org` scope) are the user's organisations
 * (`github:org`) and teams (`github:org/team`), from `GET /user/orgs` and `GET /user/teams`.
 */
import * as v from 'valibot';
import { fetchJson } from './http';
import { boundedGroups } from './groups';
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

export async function fetchGitHubProfile(accessToken: string, deadline: AbortSignal): Promise<Omit<ProviderProfile, 'groups' | 'sessionId'>> {
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

const orgsSchema = v.array(v.looseObject({ login: v.string() }));
const teamsSchema = v.array(v.looseObject({ slug: v.string(), organization: v.looseObject({ login: v.string() }) }));

/**
 * The user's organisations and teams as group names: `github:org` and `github:org/team-slug`,
 * lower-cased (GitHub compares logins and slugs without case; the namespace: providers/groups.ts). The first page of each list (100 entries)
 * is read, then bounded like every provider's groups; an organisation that restricts OAuth
 * apps lists nothing until it approves this one.
 */
export async function fetchGitHubGroups(accessToken: string, deadline: AbortSignal): Promise<string[]> {
  const [orgs, teams] = await Promise.all([
    fetchJson(`${API}/user/orgs?per_page=100`, orgsSchema, 'GitHub', { bearer: accessToken, accept: ACCEPT, deadline }),
    fetchJson(`${API}/user/teams?per_page=100`, teamsSchema, 'GitHub', { bearer: accessToken, accept: ACCEPT, deadline }),
  ]);
  const names = [
    ...orgs.map((o) => o.login.toLowerCase()),
    ...teams.map((t) => t.organization.login.toLowerCase()),
    ...teams.map((t) => `${t.organization.login}/${t.slug}`.toLowerCase()),
  ];
  return boundedGroups(names, 'github');
}

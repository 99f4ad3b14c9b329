/**
 * Which configured sign-in providers can tell Gatehouse the groups a user is in: a route whose
 * policy has a `groups` condition needs at least one, or its condition could never hold.
 * The one place that says so (the start-up check in load.ts reads it).
 */
import type { Config } from './schema';

/** Ids of the configured providers that supply groups: OpenID Connect, GitLab, dev and GitHub; not Google. */
export function providersWithGroups(config: Pick<Config, 'OIDC_ISSUER' | 'OIDC_CLIENT_ID' | 'GITLAB_CLIENT_ID' | 'GITHUB_CLIENT_ID' | 'DEV_OIDC_ISSUER' | 'isDevelopment'>): string[] {
  const ids: string[] = [];
  if (config.GITHUB_CLIENT_ID) ids.push('github');
  if (config.GITLAB_CLIENT_ID) ids.push('gitlab');
  if (config.OIDC_ISSUER && config.OIDC_CLIENT_ID) ids.push('oidc');
  if (config.isDevelopment && config.DEV_OIDC_ISSUER) ids.push('dev');
  return ids;
}

/**
 * The authorization server's own URLs (README "Apps (OpenID Connect)"): the userinfo endpoint
 * is also the audience of grant tokens that name no resource (tokens/grant-token.ts).
 */
import type { Config } from './schema';

/** `${PUBLIC_URL}${AUTH_PREFIX}/userinfo`. */
export const userinfoUrl = (config: Pick<Config, 'PUBLIC_URL' | 'AUTH_PREFIX'>) => `${config.PUBLIC_URL}${config.AUTH_PREFIX}/userinfo`;

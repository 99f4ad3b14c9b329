/**
 * Who the directory is at `{AUTH_PREFIX}/scim/v2` (README "SCIM provisioning"): a request
 * carries, as a bearer token, either the SCIM_TOKEN secret or a token an administrator created
 * (routes/admin-scim-tokens.ts). Either acts as the one directory: what SCIM writes does not
 * depend on which token wrote it. SCIM is on when SCIM_TOKEN is set or any created token exists
 * (enabled or disabled; a deleted one is gone).
 *
 * A created token is `<id>.<secret>`: the id (`scim_<random>`) finds its row with one D1 read by
 * key; the secret's SHA-256 is compared in constant time with the current one, or the one
 * before the last rotation until its overlap ends. A disabled or deleted token is refused on the
 * next request (the row is read on the primary every time). A use is written at most once a
 * minute per token. Loaded without the SCIM libraries (the admin routes use it too).
 */
import type { Context } from 'hono';
import * as base64url from 'jose/base64url';
import type { AppEnv } from '../env';
import { findScimTokenById, recordScimTokenUse, scimTokensExist, type ScimToken } from '../storage/scim-tokens';
import { randomId, sha256 } from '../util/random';
import { nowSeconds } from '../util/time';

export type { ScimToken };

/** How often a token's last use is written, at most. */
export const LAST_USE_GRANULARITY_SECONDS = 60;

/** `scim_` and 12 random bytes: the id, shown in lists and in the token before the dot. */
const TOKEN_SHAPE = /^(scim_[A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/;

/** Who authenticated: the SCIM_TOKEN secret, or the created token with this id. */
export type DirectoryCredential = { kind: 'secret' } | { kind: 'token'; id: string };

/** A new token's id and its secret (32 random bytes); the token the directory is given is {@link tokenText}. */
export function newScimTokenSecret(): { id: string; secret: string } {
  return { id: `scim_${randomId(12)}`, secret: randomId(32) };
}

/** The bearer token the directory presents: `<id>.<secret>`. */
export const tokenText = (id: string, secret: string) => `${id}.${secret}`;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && crypto.subtle.timingSafeEqual(a, b);
}

const digest = async (text: string) => base64url.decode(await sha256(text));

/** True if `secret` is the token's current secret, or its previous one within the overlap. */
async function secretMatches(token: ScimToken, secret: string, now: number): Promise<boolean> {
  const presented = await digest(secret);
  const current = sameBytes(presented, base64url.decode(token.secretHash));
  const previous =
    token.previousSecretHash !== null && token.previousSecretExpiresAt !== null && token.previousSecretExpiresAt > now && sameBytes(presented, base64url.decode(token.previousSecretHash));
  return current || previous;
}

/** Whether SCIM is on: SCIM_TOKEN is set, or an administrator created a token (not deleted since). */
export async function directoryConfigured(c: Context<AppEnv>): Promise<boolean> {
  return c.get('config').SCIM_TOKEN !== undefined || (await scimTokensExist(c.env.DB));
}

/**
 * The credential the `Authorization` header carries, or null: not a bearer token, not the
 * SCIM_TOKEN secret, and not an enabled created token with a matching secret. Compared as
 * SHA-256 digests in constant time: neither a secret's length nor a common prefix shows in the
 * time taken.
 */
export async function authenticateDirectory(c: Context<AppEnv>, authorization: string | undefined): Promise<DirectoryCredential | null> {
  const match = /^Bearer +(\S+)\s*$/i.exec(authorization ?? '');
  if (!match) return null;
  const presented = match[1]!;
  const configured = c.get('config').SCIM_TOKEN;
  if (configured !== undefined && sameBytes(await digest(presented), await digest(configured))) return { kind: 'secret' };
  const parts = TOKEN_SHAPE.exec(presented);
  if (!parts) return null;
  const token = await findScimTokenById(c.env.DB, parts[1]!);
  const now = nowSeconds();
  if (!token || token.disabledAt !== null || !(await secretMatches(token, parts[2]!, now))) return null;
  // Written when the stored use is a minute old or more; a request within the minute writes nothing.
  const since = now - LAST_USE_GRANULARITY_SECONDS;
  if (token.lastUsedAt === null || token.lastUsedAt <= since) await recordScimTokenUse(c.env.DB, token.id, now, since + 1);
  return { kind: 'token', id: token.id };
}

/**
 * What an administrator does to the bearer tokens a directory provisions with (README "SCIM
 * provisioning"): one home for each action, called by the JSON admin API
 * (routes/admin-scim-tokens.ts) and by the console's Apps and machines area
 * (routes/console-apps.ts) alike, each audited with the acting admin (`detail.admin`). A token is
 * generated here (`scim_<id>.<32 random bytes>`), returned once to the caller that shows it, and
 * kept only as its secret's SHA-256 (auth/scim-tokens.ts checks it).
 */
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../env';
import { ApiError } from '../http/errors';
import { deleteScimToken, findScimTokenById, insertScimToken, listScimTokens, rotateScimTokenSecret, setScimTokenDisabled } from '../storage/scim-tokens';
import { randomId, sha256 } from '../util/random';
import { nowSeconds as now } from '../util/time';
import { recordEvent } from './events';
import { newScimTokenSecret, tokenText, type ScimToken } from './scim-tokens';

const MAX_TOKEN_ID_LENGTH = 64;
const MAX_NAME_LENGTH = 100;

/** A token's name: what the admin calls the directory it is for. */
export const scimTokenName = v.pipe(
  v.string('must be a text'),
  v.trim(),
  v.minLength(1, 'must not be empty'),
  v.maxLength(MAX_NAME_LENGTH, `must be at most ${MAX_NAME_LENGTH} characters`),
  v.regex(/^[^\p{Cc}]*$/u, 'must not contain control characters'),
);

/** The token `id` names (enabled or not), or 404. */
export async function scimTokenToAdminister(c: Context<AppEnv>, id: string): Promise<ScimToken> {
  const token = id.length <= MAX_TOKEN_ID_LENGTH ? await findScimTokenById(c.env.DB, id) : null;
  if (!token) throw new ApiError('not_found', 'No such SCIM token.');
  return token;
}

/** Creates a token named `name` (checked by the caller with {@link scimTokenName}); its text is returned this once. */
export async function createScimToken(c: Context<AppEnv>, name: string, admin: string): Promise<{ token: ScimToken; text: string }> {
  const { id, secret } = newScimTokenSecret();
  const t = now();
  const token: ScimToken = {
    id,
    name,
    secretHash: await sha256(secret),
    previousSecretHash: null,
    previousSecretExpiresAt: null,
    createdBy: admin,
    createdAt: t,
    updatedAt: t,
    lastUsedAt: null,
    disabledAt: null,
  };
  if (!(await insertScimToken(c.env.DB, token))) throw new ApiError('conflict', 'A SCIM token with this id already exists. Try again.');
  await recordEvent(c, { event: 'admin_scim_token_created', outcome: 'success', userId: admin, detail: { admin, scim_token_id: id } });
  return { token, text: tokenText(id, secret) };
}

/** Every token, newest first, a page at a time; audited as a listing. */
export async function listScimTokensFor(c: Context<AppEnv>, page: { limit: number; offset: number }, admin: string): Promise<ScimToken[]> {
  const tokens = await listScimTokens(c.env.DB, page);
  await recordEvent(c, { event: 'admin_scim_tokens_listed', outcome: 'success', userId: admin, detail: { admin } });
  return tokens;
}

/** Records that `admin` looked at `token`. */
export async function viewScimToken(c: Context<AppEnv>, token: ScimToken, admin: string): Promise<void> {
  await recordEvent(c, { event: 'admin_scim_token_viewed', outcome: 'success', userId: admin, detail: { admin, scim_token_id: token.id } });
}

/**
 * Gives the token a new secret (same id), its text returned this once; the old one keeps working
 * `overlap` seconds more (0: it stops now; checked by the caller). 409 when another request
 * rotated or deleted it meanwhile.
 */
export async function rotateScimToken(c: Context<AppEnv>, token: ScimToken, overlap: number, admin: string): Promise<{ token: ScimToken; text: string; overlapUntil: number | null }> {
  const secret = randomId(32);
  const t = now();
  const overlapUntil = overlap > 0 ? t + overlap : null;
  const secretHash = await sha256(secret);
  if (!(await rotateScimTokenSecret(c.env.DB, token.id, token.secretHash, secretHash, overlapUntil, t))) {
    throw new ApiError('conflict', 'The token was rotated or deleted at the same time by another request. Try again.');
  }
  await recordEvent(c, { event: 'admin_scim_token_rotated', outcome: 'success', userId: admin, detail: { admin, scim_token_id: token.id, overlap_seconds: overlap } });
  const rotated: ScimToken = { ...token, secretHash, previousSecretHash: overlapUntil === null ? null : token.secretHash, previousSecretExpiresAt: overlapUntil, updatedAt: t };
  return { token: rotated, text: tokenText(token.id, secret), overlapUntil };
}

/** Refuses the token from the next request (an earlier disable's time is kept). */
export async function disableScimToken(c: Context<AppEnv>, token: ScimToken, admin: string): Promise<ScimToken> {
  const t = now();
  if (!(await setScimTokenDisabled(c.env.DB, token.id, t, t))) throw new ApiError('not_found', 'No such SCIM token.');
  await recordEvent(c, { event: 'admin_scim_token_disabled', outcome: 'success', userId: admin, detail: { admin, scim_token_id: token.id } });
  return { ...token, disabledAt: token.disabledAt ?? t, updatedAt: t };
}

/** Accepts the token again. */
export async function enableScimToken(c: Context<AppEnv>, token: ScimToken, admin: string): Promise<ScimToken> {
  const t = now();
  if (!(await setScimTokenDisabled(c.env.DB, token.id, null, t))) throw new ApiError('not_found', 'No such SCIM token.');
  await recordEvent(c, { event: 'admin_scim_token_enabled', outcome: 'success', userId: admin, detail: { admin, scim_token_id: token.id } });
  return { ...token, disabledAt: null, updatedAt: t };
}

/** Deletes the token (refused from the next request; the last one gone turns SCIM off without SCIM_TOKEN). */
export async function removeScimToken(c: Context<AppEnv>, token: ScimToken, admin: string): Promise<void> {
  if (!(await deleteScimToken(c.env.DB, token.id))) throw new ApiError('not_found', 'No such SCIM token.');
  await recordEvent(c, { event: 'admin_scim_token_deleted', outcome: 'success', userId: admin, detail: { admin, scim_token_id: token.id, name: token.name } });
}

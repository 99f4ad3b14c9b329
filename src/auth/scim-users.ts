/**
 * SCIM Users (RFC 7643 §4.1) mapped onto Gatehouse accounts. `userName` is the account's email
 * address (and the only address: `emails` mirrors it, and what a directory sends there is not
 * stored); `displayName` (else `name.formatted`, else given and family name) is the account's
 * name, and the parts of `name` are not kept apart (a PATCH of `name.familyName` alone leaves the
 * name as `displayName` has it);
 * `externalId` is the directory's id; `active: false` disables the account and ends every session
 * at once, as an admin's disable does. An account the directory creates has its address verified
 * (the organisation vouches for it) and no password: its person signs in with a provider that
 * confirms the address (auth/provider-account.ts links it). No account's address is the
 * directory's to change (`mutability`): a new address would open the account, with everything it
 * holds, to whoever proves that address. DELETE ends the
 * sessions and deletes the account with its data, as the owner's own deletion does.
 */
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../env';
import { forgetSessions } from '../storage/sessions';
import { anotherEnabledAdminExists, deleteUserAndData } from '../storage/account-changes';
import { findScimUser, insertScimUser, listScimUsers, updateScimUser, type ScimUserFields, type ScimUserRecord } from '../storage/scim';
import { setDisabled } from '../storage/users';
import { nowSeconds as now } from '../util/time';
import { sessionsOf } from './authenticate';
import { ASCII_ONLY, MAX_EMAIL_LENGTH } from './email-address';
import { recordEvent } from './events';
import { applyPatch, compileScimFilter, listResponse, readPatch, ScimProblem, USER_SCHEMA, withCanonicalAttributes, type ListQuery } from './scim-protocol';
import { effectiveRoles } from './roles';
import { endAllSessions } from './sessions';

/** The User attributes this provider supports (lower-case, to their spelling): what a PATCH path may name. */
export const USER_ATTRIBUTES: ReadonlyMap<string, string> = new Map(['userName', 'name', 'displayName', 'emails', 'active', 'externalId'].map((a) => [a.toLowerCase(), a]));

export interface ScimUserResource {
  schemas: string[];
  id: string;
  externalId?: string;
  userName: string;
  name?: { formatted: string };
  displayName?: string;
  emails: { value: string; type: string; primary: boolean }[];
  active: boolean;
  meta: { resourceType: 'User'; created: string; lastModified: string; location: string };
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

export function toScimUser(record: ScimUserRecord, base: string): ScimUserResource {
  const { user } = record;
  return {
    schemas: [USER_SCHEMA],
    id: user.id,
    ...(record.externalId !== null ? { externalId: record.externalId } : {}),
    userName: user.email,
    ...(user.name !== null ? { name: { formatted: user.name }, displayName: user.name } : {}),
    emails: [{ value: user.email, type: 'work', primary: true }],
    active: user.disabledAt === null,
    meta: { resourceType: 'User', created: iso(user.createdAt), lastModified: iso(user.updatedAt), location: `${base}/Users/${user.id}` },
  };
}

const text = (max: number) => v.pipe(v.string(), v.trim(), v.maxLength(max, `must be at most ${max} characters`));
const emailSchema = v.pipe(v.string(), v.trim(), v.toLowerCase(), v.maxLength(MAX_EMAIL_LENGTH), v.email(), v.regex(ASCII_ONLY), v.check((s) => s.split('@').length === 2));

/** A User as sent (POST, PUT, or the result of a PATCH). Attributes this provider does not support are ignored. */
const userInput = v.looseObject({
  userName: v.pipe(v.unknown(), v.check((s) => v.is(emailSchema, s), 'userName must be the person\'s email address'), v.transform((s) => v.parse(emailSchema, s))),
  externalId: v.optional(v.nullable(text(255))),
  displayName: v.optional(v.nullable(text(200))),
  name: v.optional(
    v.nullable(
      v.looseObject({
        formatted: v.optional(v.nullable(text(200))),
        givenName: v.optional(v.nullable(text(100))),
        familyName: v.optional(v.nullable(text(100))),
      }),
    ),
  ),
  active: v.optional(v.union([v.boolean(), v.pipe(v.picklist(['true', 'false', 'True', 'False']), v.transform((s) => s.toLowerCase() === 'true'))])),
});

/**
 * The account fields a User sets. Without `active`, a new account is active and an existing one
 * stays as it is (a PUT that leaves it out never enables a disabled account); `current` also keeps
 * the disabled time of an already disabled account.
 */
function readUser(body: unknown, current: ScimUserRecord | null, t: number): ScimUserFields {
  const parsed = v.safeParse(userInput, withCanonicalAttributes(body, USER_SCHEMA, USER_ATTRIBUTES));
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const where = issue.path?.map((p) => String(p.key)).join('.') ?? 'the body';
    throw new ScimProblem(400, `${where}: ${issue.message}`, 'invalidValue');
  }
  const u = parsed.output;
  const composed = [u.name?.givenName, u.name?.familyName].filter((s) => s).join(' ');
  const name = u.displayName || u.name?.formatted || composed || null;
  const active = u.active ?? (current === null || current.user.disabledAt === null);
  const disabledAt = active ? null : (current?.user.disabledAt ?? t);
  return { email: u.userName, name, externalId: u.externalId || null, disabledAt };
}

/** The account `id` names, or 404. */
async function existing(c: Context<AppEnv>, id: string): Promise<ScimUserRecord> {
  const record = id.length <= 64 ? await findScimUser(c.env.DB, id) : null;
  if (!record) throw new ScimProblem(404, `No user with id ${id.slice(0, 64)}.`);
  return record;
}

/**
 * Ends every session of the account (object, KV revocation, fence, the apps' back-channel
 * logout), as an admin's disable does: before the account is disabled and again after, so a
 * sign-in that read it before stored its session in between is ended too.
 */
async function endEverySession(c: Context<AppEnv>, userId: string): Promise<number> {
  return (await endAllSessions(c, userId)).length;
}

async function audit(c: Context<AppEnv>, event: string, userId: string, detail: Record<string, unknown> = {}) {
  await recordEvent(c, { event, outcome: 'success', userId, detail: { via: 'scim', ...detail } });
}

export async function createScimUser(c: Context<AppEnv>, body: unknown, base: string): Promise<ScimUserResource> {
  const t = now();
  const fields = readUser(body, null, t);
  const record = await insertScimUser(c.env.DB, fields, t);
  if (!record) throw new ScimProblem(409, `A user with userName ${fields.email} already exists.`, 'uniqueness');
  await audit(c, 'scim_user_created', record.user.id, { active: fields.disabledAt === null });
  return toScimUser(record, base);
}

export async function getScimUser(c: Context<AppEnv>, id: string, base: string): Promise<ScimUserResource> {
  return toScimUser(await existing(c, id), base);
}

/**
 * A list. A filter that requires an address (`userName eq`, `emails.value eq`, as directories look
 * people up before creating them) or an `externalId` reads only the rows that have it; any other
 * reads every account. Either way the whole filter then decides.
 */
export async function listScimUserResources(c: Context<AppEnv>, query: ListQuery, base: string) {
  const filter = query.filter === undefined ? undefined : compileScimFilter(query.filter);
  const email = filter?.requires.get('username') ?? filter?.requires.get('emails.value');
  const externalId = filter?.requires.get('externalid');
  const records =
    typeof email === 'string'
      ? await listScimUsers(c.env.DB, { email })
      : typeof externalId === 'string'
        ? await listScimUsers(c.env.DB, { externalId })
        : await listScimUsers(c.env.DB);
  return listResponse(records.map((r) => toScimUser(r, base)), query, filter);
}

const isAdministrator = (c: Context<AppEnv>, user: ScimUserRecord['user']) => effectiveRoles(user, c.get('config')).includes('admin');

/**
 * Refuses (409) to disable or delete the last enabled administrator, by the stored role or by a
 * verified address in ADMIN_EMAILS: the gateway would be left without one (a deactivation locks
 * out as surely as a deletion), and a leaked SCIM token could keep anyone from disabling it.
 */
async function refuseLastAdministrator(c: Context<AppEnv>, user: ScimUserRecord['user']): Promise<void> {
  if (isAdministrator(c, user) && !(await anotherEnabledAdminExists(c.env.DB, user.id, c.get('config').ADMIN_EMAILS))) {
    throw new ScimProblem(409, 'This is the only administrator account. Make someone else an administrator first.');
  }
}

/**
 * Writes `fields` over the account as `current` had it (one statement, only if unchanged since):
 * a deactivation ends every session first, and again once written.
 */
async function writeUser(c: Context<AppEnv>, current: ScimUserRecord, fields: ScimUserFields, base: string): Promise<ScimUserResource> {
  const { user } = current;
  // A new address would open the account to whoever proves it, while everything the account
  // holds now (identities, passkeys, sessions) stays: an address is changed by its owner only.
  if (fields.email !== user.email) {
    throw new ScimProblem(400, 'The email address (userName) of an account is its owner\'s to change, not the directory\'s.', 'mutability');
  }
  // The administrator's disable (a compromised account, say) is not the directory's to undo: its
  // next push of `active: true` would otherwise quietly reopen the account.
  if (user.disabledAt !== null && fields.disabledAt === null && !current.disabledByDirectory) {
    throw new ScimProblem(409, 'The gateway\'s administrator disabled this account: only an administrator can enable it.');
  }
  const deactivating = user.disabledAt === null && fields.disabledAt !== null;
  // An administrator's deactivation is written only while another stays enabled, asked again in
  // the write: two requests at once must not each count on the other.
  const keepingAdmin = deactivating && isAdministrator(c, user) ? c.get('config').ADMIN_EMAILS : undefined;
  if (deactivating) {
    await refuseLastAdministrator(c, user);
    await endEverySession(c, user.id);
  }
  if (!(await updateScimUser(c.env.DB, user, fields, now(), keepingAdmin))) {
    if (keepingAdmin !== undefined) await refuseLastAdministrator(c, user);
    throw new ScimProblem(409, 'The user changed while this request was applied. Read it again and retry.');
  }
  if (deactivating) {
    const ended = await endEverySession(c, user.id);
    await audit(c, 'scim_user_deactivated', user.id, { ended_sessions: ended });
  } else {
    await audit(c, 'scim_user_updated', user.id, { active: fields.disabledAt === null });
  }
  return toScimUser((await findScimUser(c.env.DB, user.id)) ?? current, base);
}

export async function replaceScimUser(c: Context<AppEnv>, id: string, body: unknown, base: string): Promise<ScimUserResource> {
  const current = await existing(c, id);
  return writeUser(c, current, readUser(body, current, now()), base);
}

export async function patchScimUser(c: Context<AppEnv>, id: string, body: unknown, base: string): Promise<ScimUserResource> {
  const operations = readPatch(body);
  const current = await existing(c, id);
  const resource = toScimUser(current, base);
  const patchable = { ...resource, meta: { ...resource.meta, created: new Date(resource.meta.created), lastModified: new Date(resource.meta.lastModified) } };
  const patched = applyPatch(patchable, operations, USER_SCHEMA, USER_ATTRIBUTES);
  return writeUser(c, current, readUser(patched, current, now()), base);
}

/**
 * Deletes the account: every session ended (and their object's rows forgotten), then the account
 * and its data in one transaction, as the owner's own deletion does. Refused for the last enabled
 * administrator (the gateway would have none), as deactivation is.
 */
export async function deleteScimUser(c: Context<AppEnv>, id: string): Promise<void> {
  const current = await existing(c, id);
  const { user } = current;
  await refuseLastAdministrator(c, user);
  if (user.disabledAt === null) {
    await endEverySession(c, user.id);
    if (!isAdministrator(c, user)) await setDisabled(c.env.DB, user.id, now(), now());
    // An administrator is disabled first only while another stays enabled (asked in the write), as a deactivation is.
    else if (!(await updateScimUser(c.env.DB, user, { name: user.name, externalId: current.externalId, disabledAt: now() }, now(), c.get('config').ADMIN_EMAILS))) {
      await refuseLastAdministrator(c, user);
      throw new ScimProblem(409, 'The user changed while this request was applied. Read it again and retry.');
    }
  }
  const ended = await endEverySession(c, user.id);
  await forgetSessions(sessionsOf(c, user.id));
  await deleteUserAndData(c.env.DB, user.id);
  await audit(c, 'scim_user_deleted', user.id, { ended_sessions: ended });
}

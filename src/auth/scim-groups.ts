/**
 * SCIM Groups (RFC 7643 §4.2): the directory's groups and their members (accounts by id). Their
 * names reach access tokens as `scim:<displayName>` (auth/sessions.ts `accessTokenFor`), so a
 * membership change takes effect at each member's next refresh. Every change (PUT, PATCH) is
 * computed whole and written in one batch, only if the group has not changed since it was read.
 */
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../env';
import { deleteScimGroup, findScimGroup, insertScimGroup, listScimGroups, replaceScimGroup, unknownUserIds, type ScimGroup, type ScimGroupFields } from '../storage/scim';
import { nowSeconds as now } from '../util/time';
import { recordEvent } from './events';
import { applyPatch, compileScimFilter, GROUP_SCHEMA, listResponse, readPatch, ScimProblem, withCanonicalAttributes, type ListQuery, type PatchOperation } from './scim-protocol';

/** The Group attributes this provider supports (lower-case, to their spelling): what a PATCH path may name. */
export const GROUP_ATTRIBUTES: ReadonlyMap<string, string> = new Map(['displayName', 'members', 'externalId'].map((a) => [a.toLowerCase(), a]));

/** The most members a group may have (each is a row written in the group's one batch). */
export const MAX_MEMBERS = 1000;

export interface ScimGroupResource {
  schemas: string[];
  id: string;
  externalId?: string;
  displayName: string;
  members: { value: string; $ref: string; type: 'User' }[];
  meta: { resourceType: 'Group'; created: string; lastModified: string; location: string };
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

export function toScimGroup(group: ScimGroup, base: string): ScimGroupResource {
  return {
    schemas: [GROUP_SCHEMA],
    id: group.id,
    ...(group.externalId !== null ? { externalId: group.externalId } : {}),
    displayName: group.displayName,
    members: group.members.map((id) => ({ value: id, $ref: `${base}/Users/${id}`, type: 'User' })),
    meta: { resourceType: 'Group', created: iso(group.createdAt), lastModified: iso(group.updatedAt), location: `${base}/Groups/${group.id}` },
  };
}

const groupInput = v.looseObject({
  // Printable, no control characters: the name is a claim value and a policy's group name.
  displayName: v.pipe(v.string('displayName is required'), v.trim(), v.minLength(1, 'displayName must not be empty'), v.maxLength(100, 'displayName must be at most 100 characters (it becomes the group name scim:<displayName>)'), v.regex(/^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]+$/, 'displayName must not contain control characters')),
  externalId: v.optional(v.nullable(v.pipe(v.string(), v.trim(), v.maxLength(255)))),
  members: v.optional(v.nullable(v.array(v.looseObject({ value: v.pipe(v.string('each member needs a value (a user id)'), v.maxLength(64)) }))), []),
});

/** The fields a Group sets; every member must be an account (`invalidValue` names one that is not). */
async function readGroup(c: Context<AppEnv>, body: unknown): Promise<ScimGroupFields> {
  const parsed = v.safeParse(groupInput, withCanonicalAttributes(body, GROUP_SCHEMA, GROUP_ATTRIBUTES));
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const where = issue.path?.map((p) => String(p.key)).join('.') ?? 'the body';
    throw new ScimProblem(400, `${where}: ${issue.message}`, 'invalidValue');
  }
  const members = [...new Set((parsed.output.members ?? []).map((m) => m.value))];
  if (members.length > MAX_MEMBERS) throw new ScimProblem(400, `A group may have at most ${MAX_MEMBERS} members.`, 'tooMany');
  const unknown = await unknownUserIds(c.env.DB, members);
  if (unknown.length > 0) throw new ScimProblem(400, `No user with id ${unknown[0]!.slice(0, 64)}.`, 'invalidValue');
  return { displayName: parsed.output.displayName, externalId: parsed.output.externalId || null, members };
}

async function existing(c: Context<AppEnv>, id: string): Promise<ScimGroup> {
  const group = id.length <= 64 ? await findScimGroup(c.env.DB, id) : null;
  if (!group) throw new ScimProblem(404, `No group with id ${id.slice(0, 64)}.`);
  return group;
}

const taken = (name: string) => new ScimProblem(409, `A group named ${name} already exists.`, 'uniqueness');

async function audit(c: Context<AppEnv>, event: string, group: { id: string; displayName: string }, detail: Record<string, unknown> = {}) {
  await recordEvent(c, { event, outcome: 'success', userId: null, detail: { via: 'scim', group: group.id, name: group.displayName, ...detail } });
}

export async function createScimGroup(c: Context<AppEnv>, body: unknown, base: string): Promise<ScimGroupResource> {
  const fields = await readGroup(c, body);
  const group = await insertScimGroup(c.env.DB, fields, now());
  if (!group) throw taken(fields.displayName);
  await audit(c, 'scim_group_created', group, { members: group.members.length });
  return toScimGroup(group, base);
}

export async function getScimGroup(c: Context<AppEnv>, id: string, base: string): Promise<ScimGroupResource> {
  return toScimGroup(await existing(c, id), base);
}

/** A list; `displayName eq` (the directories' lookup) reads only the group of that name. */
export async function listScimGroupResources(c: Context<AppEnv>, query: ListQuery, base: string) {
  const filter = query.filter === undefined ? undefined : compileScimFilter(query.filter);
  const name = filter?.requires.get('displayname');
  const groups = await listScimGroups(c.env.DB, typeof name === 'string' ? { displayName: name } : {});
  return listResponse(groups.map((g) => toScimGroup(g, base)), query, filter);
}

async function write(c: Context<AppEnv>, current: ScimGroup, fields: ScimGroupFields, base: string): Promise<ScimGroupResource> {
  const outcome = await replaceScimGroup(c.env.DB, current, fields, now());
  if (outcome === 'taken') throw taken(fields.displayName);
  if (outcome === 'stale') throw new ScimProblem(409, 'The group changed while this request was applied. Read it again and retry.');
  const added = fields.members.filter((m) => !current.members.includes(m)).length;
  const removed = current.members.filter((m) => !fields.members.includes(m)).length;
  await audit(c, 'scim_group_updated', { id: current.id, displayName: fields.displayName }, { added, removed });
  return toScimGroup((await findScimGroup(c.env.DB, current.id)) ?? current, base);
}

export async function replaceScimGroupResource(c: Context<AppEnv>, id: string, body: unknown, base: string): Promise<ScimGroupResource> {
  const current = await existing(c, id);
  return write(c, current, await readGroup(c, body), base);
}

const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Entra's removal of members (`remove`, path `members`, a value list of `{ value, $ref: null }`)
 * as one removal per member by id: scim-patch removes listed values only when equal as a whole,
 * and a member here also carries its `$ref` and `type`.
 */
function memberRemovals(op: PatchOperation): PatchOperation[] {
  if (op.op !== 'remove' || op.path?.trim().toLowerCase() !== 'members' || !Array.isArray(op.value)) return [op];
  return op.value.map((member: unknown) => {
    const value = typeof member === 'object' && member !== null && 'value' in member ? member.value : undefined;
    if (typeof value !== 'string' || !USER_ID.test(value)) throw new ScimProblem(400, 'Each member to remove needs a value (a user id).', 'invalidValue');
    return { op: 'remove', path: `members[value eq "${value}"]` };
  });
}

/**
 * Applies a PatchOp (Okta's and Entra's `add`/`remove` of members, `replace` of displayName) to
 * the group as read, then writes the whole result in one batch: an operation that fails leaves
 * nothing of the others.
 */
export async function patchScimGroup(c: Context<AppEnv>, id: string, body: unknown, base: string): Promise<ScimGroupResource> {
  const operations = readPatch(body).flatMap(memberRemovals);
  const current = await existing(c, id);
  const resource = toScimGroup(current, base);
  const patchable = { ...resource, meta: { ...resource.meta, created: new Date(resource.meta.created), lastModified: new Date(resource.meta.lastModified) } };
  const patched = applyPatch(patchable, operations, GROUP_SCHEMA, GROUP_ATTRIBUTES);
  return write(c, current, await readGroup(c, patched), base);
}

export async function deleteScimGroupResource(c: Context<AppEnv>, id: string): Promise<void> {
  const group = await existing(c, id);
  if (!(await deleteScimGroup(c.env.DB, group.id))) throw new ScimProblem(404, `No group with id ${id.slice(0, 64)}.`);
  await audit(c, 'scim_group_deleted', group, { members: group.members.length });
}

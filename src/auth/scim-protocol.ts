/**
 * The SCIM 2.0 protocol pieces every resource shares (RFC 7644): the error schema, list
 * responses with filter and paging, and PATCH (the directory's bearer token: auth/scim-tokens.ts).
 * Filters are compiled by `scim-query-filter-parser` and PATCH applied by `scim-patch`; this module decides
 * which attributes exist (an unknown one is `invalidPath`), so neither library is trusted with
 * the contract. Loaded only with the SCIM routes (app-lazy.ts), never at start-up.
 *
 * Filters are parsed by `scim2-parse-filter` (scim-patch's own parser), not by
 * `scim-query-filter-parser`: that one's grammar library (apg-conv-api) assigns an undeclared
 * variable, which throws in the strict-mode ES modules a Worker runs.
 */
import { filter as filterOf, parse as parseFilter, type Filter } from 'scim2-parse-filter';
import { scimPatch, ScimError as PatchLibraryError, type ScimPatchOperation, type ScimResource } from 'scim-patch';
import * as v from 'valibot';

export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const SCIM_CONTENT_TYPE = 'application/scim+json';

/** RFC 7644 §3.12 `scimType` values this provider answers with. */
export type ScimType = 'invalidFilter' | 'invalidPath' | 'invalidValue' | 'invalidSyntax' | 'uniqueness' | 'mutability' | 'noTarget' | 'tooMany';

/** An error in the SCIM error schema (the routes render it with `application/scim+json`). */
export class ScimProblem extends Error {
  constructor(
    readonly status: 400 | 401 | 404 | 409 | 413 | 415 | 429 | 500 | 503,
    readonly detail: string,
    readonly scimType?: ScimType,
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'ScimProblem';
  }

  body() {
    return { schemas: [ERROR_SCHEMA], status: String(this.status), ...(this.scimType ? { scimType: this.scimType } : {}), detail: this.detail };
  }
}

/** The largest page a list answers (`count` above it is lowered, as RFC 7644 §3.4.2.4 allows). */
export const MAX_PAGE = 200;

const pageQuery = v.object({
  startIndex: v.optional(v.pipe(v.string(), v.regex(/^-?\d{1,9}$/, 'startIndex must be an integer'), v.transform(Number))),
  count: v.optional(v.pipe(v.string(), v.regex(/^-?\d{1,9}$/, 'count must be an integer'), v.transform(Number))),
  filter: v.optional(v.pipe(v.string(), v.maxLength(1000, 'the filter is longer than 1000 characters'))),
});

export interface ListQuery {
  startIndex: number;
  count: number;
  filter: string | undefined;
}

/** `startIndex` (1-based, below 1 is 1), `count` (0..MAX_PAGE) and `filter` of a list request. */
export function readListQuery(query: Record<string, string>): ListQuery {
  const parsed = v.safeParse(pageQuery, query);
  if (!parsed.success) throw new ScimProblem(400, parsed.issues[0].message, 'invalidValue');
  const { startIndex = 1, count = 100, filter } = parsed.output;
  return { startIndex: Math.max(1, startIndex), count: Math.min(MAX_PAGE, Math.max(0, count)), filter };
}

/**
 * Attributes compared exactly (RFC 7643 `caseExact: true`), as `path` within the resource, lower-case:
 * everything else is compared without regard to case, as are all attribute names.
 */
const CASE_EXACT: ReadonlySet<string> = new Set(['id', 'externalid', 'members.value', 'meta.location']);

const within = (prefix: string, path: string) => (prefix ? `${prefix}.${path}` : path);

/** An attribute path lower-case, without the core schema URN before it. */
function attributePath(path: string): string {
  const lower = path.toLowerCase();
  return lower.startsWith('urn:ietf:params:scim:schemas:core:2.0:') ? lower.slice(lower.indexOf(':', 'urn:ietf:params:scim:schemas:core:2.0:'.length) + 1) : lower;
}

/** The filter with attribute names lower-case, and values lower-case where compared without regard to case. */
function normaliseFilter(f: Filter, prefix: string): Filter {
  switch (f.op) {
    case 'and':
    case 'or':
      return { ...f, filters: f.filters.map((x) => normaliseFilter(x, prefix)) };
    case 'not':
      return { ...f, filter: normaliseFilter(f.filter, prefix) };
    case '[]': {
      const path = attributePath(f.attrPath);
      return { ...f, attrPath: path, valFilter: normaliseFilter(f.valFilter, within(prefix, path)) };
    }
    case 'pr':
      return { ...f, attrPath: attributePath(f.attrPath) };
    default: {
      const path = attributePath(f.attrPath);
      const exact = CASE_EXACT.has(within(prefix, path));
      return { ...f, attrPath: path, compValue: typeof f.compValue === 'string' && !exact ? f.compValue.toLowerCase() : f.compValue };
    }
  }
}

/** The resource as a normalised filter sees it: names lower-case, values too where compared without regard to case. */
function filterView(value: unknown, path: string): unknown {
  if (Array.isArray(value)) return value.map((x) => filterView(x, path));
  if (typeof value === 'string') return CASE_EXACT.has(path) ? value : value.toLowerCase();
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, x]) => [k.toLowerCase(), filterView(x, within(path, k.toLowerCase()))]));
}

export interface CompiledFilter {
  test: (resource: unknown) => boolean;
  /**
   * Values the filter requires of an attribute (lower-case path, e.g. `username`, `externalid`,
   * `emails.value`, `displayname`) by `eq` alone or under `and`: a list may read only the rows
   * that have it, then apply `test` to them. Values are normalised as `test` compares them.
   */
  requires: Map<string, boolean | null | number | string>;
}

/** What an `eq` at the top, or under `and`s, pins down. */
function required(f: Filter, into: Map<string, boolean | null | number | string>): void {
  if (f.op === 'and') for (const x of f.filters) required(x, into);
  else if (f.op === 'eq' && !into.has(f.attrPath)) into.set(f.attrPath, f.compValue);
}

/** A SCIM filter compiled, or `invalidFilter`. */
export function compileScimFilter(filter: string): CompiledFilter {
  let normalised: Filter;
  let test: (r: unknown) => boolean;
  try {
    normalised = normaliseFilter(parseFilter(filter), '');
    test = filterOf(normalised);
  } catch (e) {
    throw new ScimProblem(400, `The filter cannot be parsed: ${e instanceof Error ? e.message.slice(0, 200) : 'syntax error'}.`, 'invalidFilter');
  }
  const requires = new Map<string, boolean | null | number | string>();
  required(normalised, requires);
  return { test: (resource) => test(filterView(resource, '')) === true, requires };
}

/** A ListResponse of the resources `query` selects (filter, then the page). */
export function listResponse<T>(resources: T[], query: ListQuery, filter = query.filter === undefined ? undefined : compileScimFilter(query.filter)) {
  const selected = filter === undefined ? resources : resources.filter(filter.test);
  const page = selected.slice(query.startIndex - 1, query.startIndex - 1 + query.count);
  return { schemas: [LIST_SCHEMA], totalResults: selected.length, startIndex: query.startIndex, itemsPerPage: page.length, Resources: page };
}

const patchBody = v.object({
  schemas: v.pipe(v.array(v.string()), v.check((s) => s.includes(PATCH_SCHEMA), `schemas must include ${PATCH_SCHEMA}`)),
  Operations: v.pipe(
    v.array(
      v.object({
        op: v.pipe(v.string(), v.transform((s) => s.toLowerCase()), v.picklist(['add', 'remove', 'replace'], 'op must be add, remove or replace')),
        path: v.optional(v.pipe(v.string(), v.maxLength(500))),
        value: v.optional(v.unknown()),
      }),
    ),
    v.minLength(1, 'Operations must not be empty'),
    v.maxLength(1000, 'at most 1000 operations'),
  ),
});

export type PatchOperation = v.InferOutput<typeof patchBody>['Operations'][number];

/** The operations of a PatchOp body, or `invalidSyntax`/`invalidValue`. */
export function readPatch(body: unknown): PatchOperation[] {
  const parsed = v.safeParse(patchBody, body);
  if (!parsed.success) throw new ScimProblem(400, `Not a PatchOp: ${parsed.issues[0].message}.`, 'invalidSyntax');
  return parsed.output.Operations;
}

/**
 * The attribute a PATCH path names first, lower-cased and without the schema URN before it
 * (`urn:...:User:name.givenName` → `name`, `emails[type eq "work"].value` → `emails`).
 */
function firstAttribute(path: string, schemaUrn: string): string {
  return splitPath(path, schemaUrn).name.toLowerCase();
}

/** A path's first attribute as written (without the schema URN) and what follows it. */
function splitPath(path: string, schemaUrn: string): { name: string; rest: string } {
  let rest = path.trim();
  if (rest.toLowerCase().startsWith(`${schemaUrn.toLowerCase()}:`)) rest = rest.slice(schemaUrn.length + 1);
  const match = /^[A-Za-z][A-Za-z0-9_$-]*/.exec(rest);
  if (!match) throw new ScimProblem(400, `The path "${path.slice(0, 100)}" is not an attribute path.`, 'invalidPath');
  return { name: match[0], rest: rest.slice(match[0].length) };
}

/**
 * The path with its first attribute spelled as the resource spells it: attribute names are
 * case-insensitive (RFC 7643 §2.1), and scim-patch compares them exactly, so `Active` would
 * otherwise add a second attribute beside `active` and change nothing.
 */
function canonicalPath(path: string, schemaUrn: string, attributes: ReadonlyMap<string, string>): string {
  const { name, rest } = splitPath(path, schemaUrn);
  return `${attributes.get(name.toLowerCase()) ?? name}${rest}`;
}

/**
 * A resource as sent (POST, PUT, a PATCH's result) with its attributes spelled as `attributes`
 * has them (lower-case to spelling): names are case-insensitive (RFC 7643 §2.1), and `Active`
 * left as sent would be ignored, so a deactivation would answer 200 and change nothing. Two keys
 * naming one attribute are `invalidSyntax`. Anything else is as sent.
 */
export function withCanonicalAttributes(body: unknown, schemaUrn: string, attributes: ReadonlyMap<string, string>): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    const bare = key.toLowerCase().startsWith(`${schemaUrn.toLowerCase()}:`) ? key.slice(schemaUrn.length + 1) : key;
    const name = attributes.get(bare.toLowerCase()) ?? key;
    if (Object.hasOwn(out, name)) throw new ScimProblem(400, `The attribute "${name}" is given twice.`, 'invalidSyntax');
    Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Names that reach an object's prototype when a library walks a path or merges a value by them:
 * no SCIM attribute is named so, and scim-patch follows them (`name.__proto__.x` set `x` on the
 * prototype every object of the isolate shares).
 */
const PROTOTYPE_NAME = /(?:^|[^A-Za-z0-9_$])(?:__proto__|constructor|prototype)(?:[^A-Za-z0-9_$]|$)/i;

/** Whether `value`, at any depth, has a key that names a prototype (a JSON body's own `__proto__` included). */
function reachesPrototype(value: unknown, depth = 0): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (depth > 32) return true;
  for (const key of Object.keys(value)) {
    if (PROTOTYPE_NAME.test(key) || reachesPrototype((value as Record<string, unknown>)[key], depth + 1)) return true;
  }
  return false;
}

/**
 * Applies `operations` to `resource` (a copy: nothing changes on failure) after checking that
 * every path, or every key of a path-less value, names one of `attributes` (lower-case, to the
 * spelling the resource uses, which every path and key is rewritten to) of
 * `schemaUrn`, and that no path or value names a prototype at any depth: anything else is
 * `invalidPath`. The caller validates the result as a whole.
 */
export function applyPatch<T extends ScimResource>(resource: T, operations: PatchOperation[], schemaUrn: string, attributes: ReadonlyMap<string, string>): T {
  for (const op of operations) {
    if ((op.path !== undefined && PROTOTYPE_NAME.test(op.path)) || reachesPrototype(op.value)) {
      throw new ScimProblem(400, 'No attribute of this resource is named __proto__, constructor or prototype.', 'invalidPath');
    }
    if (op.path !== undefined) {
      const name = firstAttribute(op.path, schemaUrn);
      if (!attributes.has(name)) throw new ScimProblem(400, `The attribute "${name}" does not exist on this resource, or cannot be changed.`, 'invalidPath');
    } else {
      if (op.op === 'remove') throw new ScimProblem(400, 'A remove operation needs a path.', 'noTarget');
      if (typeof op.value !== 'object' || op.value === null || Array.isArray(op.value)) {
        throw new ScimProblem(400, 'An operation without a path needs an object of attributes as its value.', 'invalidValue');
      }
      for (const [key, value] of Object.entries(op.value)) {
        const name = firstAttribute(key, schemaUrn);
        // Okta's replace of a group's name repeats the group's id beside it: the same id changes nothing.
        if (name === 'id' && value === resource.id) continue;
        if (!attributes.has(name)) throw new ScimProblem(400, `The attribute "${name}" does not exist on this resource, or cannot be changed.`, 'invalidPath');
      }
    }
  }
  const canonicalKeys = (value: unknown) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key]) => firstAttribute(key, schemaUrn) !== 'id')
        .map(([key, v]) => [canonicalPath(key, schemaUrn, attributes), v]),
    );
  };
  try {
    const ops = operations.map((o): ScimPatchOperation => {
      const path = o.path === undefined ? undefined : canonicalPath(o.path, schemaUrn, attributes);
      return o.op === 'remove' ? { op: 'remove', path: path ?? '', value: o.value } : { op: o.op, path, value: path === undefined ? canonicalKeys(o.value) : o.value };
    });
    return scimPatch(resource, ops, { mutateDocument: false, treatMissingAsAdd: true });
  } catch (e) {
    if (e instanceof PatchLibraryError) {
      const type: ScimType = e.scimCode === 'noTarget' ? 'noTarget' : e.scimCode === 'invalidPath' ? 'invalidPath' : 'invalidValue';
      throw new ScimProblem(400, `The patch cannot be applied: ${e.message.slice(0, 200)}`, type);
    }
    throw e;
  }
}

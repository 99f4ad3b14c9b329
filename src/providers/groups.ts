/**
 * Group names from a provider, bounded before anything keeps them: they travel in every access
 * token (a cookie, at most 4 KB with everything else), the assertion and `X-Auth-Groups`.
 * Only strings count; an empty name, one longer than {@link MAX_GROUP_LENGTH} characters or
 * holding a control character is dropped (never shortened: a prefix of a name is another
 * group's name); duplicates go; past {@link MAX_GROUPS} names or {@link MAX_GROUPS_BYTES} bytes
 * the rest is dropped. Dropping a group can only refuse, never admit.
 */

export const MAX_GROUP_LENGTH = 128;
export const MAX_GROUPS = 50;
/**
 * Bytes the kept names take in a token's JSON (UTF-8, quotes and separators included): a
 * name of 128 CJK characters is 384 bytes, so characters alone would not bound the token.
 */
export const MAX_GROUPS_BYTES = 1024;

const encoder = new TextEncoder();

/**
 * Control characters (C0, DEL, C1), the Unicode line and paragraph separators, and a lone
 * surrogate (not text: it cannot be encoded for a header).
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\ud800-\udfff]/u;

/**
 * Providers where anyone can create an organisation or group of any name not yet taken: their
 * names are kept as `namespace:name` (`github:acme/platform`, `gitlab:acme/platform`), so that
 * a stranger's GitHub organisation `eng` is never the company directory's `eng`, nor a GitLab
 * group a GitHub team of the same path. The deployment's own provider (OIDC_*) names groups
 * as they are, except that it cannot send names in these namespaces (they are dropped).
 */
export type GroupNamespace = 'github' | 'gitlab' | 'scim';

/** `scim:` names are the directory's groups (auth/scim-groups.ts): no provider may send one. */
const NAMESPACED = /^(?:github|gitlab|scim):/i;

/**
 * The usable names of a claim value, in the provider's order, qualified by `namespace` when the
 * provider has one; an absent or non-list value has none.
 */
export function boundedGroups(value: unknown, namespace?: GroupNamespace): string[] {
  if (!Array.isArray(value)) return [];
  const kept: string[] = [];
  const seen = new Set<string>();
  let total = 0;
  for (const x of value) {
    if (kept.length >= MAX_GROUPS) break;
    if (typeof x !== 'string' || x === '' || CONTROL.test(x)) continue;
    if (namespace === undefined && NAMESPACED.test(x)) continue;
    const name = namespace === undefined ? x : `${namespace}:${x}`;
    if (name.length > MAX_GROUP_LENGTH || seen.has(name)) continue;
    const bytes = encoder.encode(JSON.stringify(name)).length + 1;
    if (total + bytes > MAX_GROUPS_BYTES) break;
    seen.add(name);
    kept.push(name);
    total += bytes;
  }
  return kept;
}

/**
 * A claim's groups: `undefined` when the claim is absent (another source may have it), else its
 * bounded names (a claim that is present but not a list of strings gives none).
 */
export function groupsClaim(claims: Record<string, unknown>, name: string, namespace?: GroupNamespace): string[] | undefined {
  if (!Object.hasOwn(claims, name)) return undefined;
  return boundedGroups(claims[name], namespace);
}

/**
 * A route's `policy` (README "Policy"): parsed and checked once per isolate, on its first
 * request (route-policies.ts loads this module then, not at start-up), into the plain
 * {@link Policy} the gate evaluates (proxy/policy.ts). Every refusal is a {@link ConfigError}
 * for ROUTES naming the route, the rule and the field (`allow[1].any[0].ip[2]`).
 *
 * Parsed by hand rather than with a valibot schema: the messages must name the nested rule, and
 * the values are compiled here too (CIDR ranges to bytes, path globs to folded segments), so that
 * nothing is parsed per request.
 */
import { parseCidr, type IpRange } from '../util/ip';
import { foldSegment } from '../util/fold-case';
import { ConfigError } from './load';
import { providersWithGroups } from './providers-with-groups';
import type { RouteConfig } from './routes-schema';
import type { Config } from './schema';

/** Kinds of caller: a signed-in person, or a service with a token of its own (README "Machines"). */
export const CALLERS = ['person', 'service'] as const;
export type Caller = (typeof CALLERS)[number];

/** Facts compared against a list of values, any of which may match. */
export type ListFact = 'email' | 'domain' | 'groups' | 'roles' | 'amr' | 'method' | 'country' | 'caller' | 'client';

export type Condition =
  | { kind: 'all' | 'any'; of: readonly Condition[] }
  | { kind: 'not'; of: Condition }
  | { kind: ListFact; values: readonly string[] }
  /** Each glob: folded segments, with `*` (one segment) and `**` (any number) as they are. */
  | { kind: 'path'; globs: readonly (readonly string[])[] }
  | { kind: 'ip'; ranges: readonly IpRange[] }
  | { kind: 'signed_in_within'; seconds: number };

export interface Rule {
  /** Where the rule is written: `allow[0]`, `deny[2]`, or the shorthand's `allow.roles`. */
  label: string;
  condition: Condition;
}

export interface Policy {
  allow: readonly Rule[];
  deny: readonly Rule[];
  /** The service binding asked after the rules allow (`external = "service:NAME"`), or null. */
  external: string | null;
  /**
   * Where the first `groups` condition naming a provider's group (not a directory's `scim:` one)
   * is written, or null: the route needs a provider with groups, or SCIM_TOKEN.
   */
  groupsAt: string | null;
}

/** A policy that cannot be used; `at` names the rule and field (`allow[1].groups`). */
export class PolicyError extends Error {
  constructor(
    readonly at: string,
    message: string,
  ) {
    super(at ? `${at}: ${message}` : message);
    this.name = 'PolicyError';
  }
}

const LIST_FACTS: readonly ListFact[] = ['email', 'domain', 'groups', 'roles', 'amr', 'method', 'country', 'caller', 'client'];
const FACTS = [...LIST_FACTS, 'path', 'ip', 'signed_in_within', 'all', 'any', 'not'];

/** RFC 8176's registered authentication method reference values. */
const AMR_VALUES = new Set(['face', 'fpt', 'geo', 'hwk', 'iris', 'kba', 'mca', 'mfa', 'otp', 'pin', 'pop', 'pwd', 'rba', 'retina', 'sc', 'sms', 'swk', 'tel', 'user', 'vbm', 'wia']);

/**
 * ISO 3166-1 alpha-2, as `request.cf.country` gives it, plus Cloudflare's `XX` (unknown) and
 * `T1` (Tor). A list rather than a pattern so that a plausible mistake (`UK` for `GB`) is refused.
 */
const COUNTRIES = new Set(
  (
    'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ ' +
    'CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR ' +
    'GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP ' +
    'KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT ' +
    'MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW ' +
    'SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ ' +
    'UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XX T1'
  ).split(' '),
);

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Z-]+$/;
/** A client id as the gateway issues them (`cli_<random>`) or any visible ASCII up to its length limit. */
const CLIENT_ID = /^[\x21-\x7e]{1,256}$/;
const EMAIL = /^[^@\s]+@[^@\s]+$/;
const DOMAIN = /^[^@\s/\\]+$/;
// Decoded path text: what normalise-path.ts lets through a segment, less `*` (the wildcard).
const GLOB_SEGMENT = /^[^\u0000-\u001f\u007f/\\;%?#[\]{}*]+$/;
const MAX_SIGN_IN_AGE = 31_536_000;

/** A directory's (SCIM) group as a rule names it: `scim:<displayName>`, the prefix in any case. */
export const isDirectoryGroupName = (name: string) => name.slice(0, 5).toLowerCase() === 'scim:';

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** A list fact's values, checked and brought to the form the gate compares. */
function listValues(fact: ListFact, raw: unknown, at: string): string[] {
  if (!Array.isArray(raw)) throw new PolicyError(at, `must be a list of values, e.g. ${fact} = ["${example(fact)}"]`);
  if (raw.length === 0) throw new PolicyError(at, 'is an empty list: it would never match (name at least one value, or leave the fact out)');
  return raw.map((value, i) => {
    const where = `${at}[${i}]`;
    if (typeof value !== 'string' || value.trim() === '') throw new PolicyError(where, 'must be a non-empty string');
    const v = value.trim();
    switch (fact) {
      case 'email':
        if (!EMAIL.test(v)) throw new PolicyError(where, `"${v}" is not an email address`);
        return v.toLowerCase();
      case 'domain':
        if (!DOMAIN.test(v)) throw new PolicyError(where, `"${v}" is not a domain (write example.com, without "@")`);
        return v.toLowerCase();
      case 'amr':
        if (!AMR_VALUES.has(v)) throw new PolicyError(where, `"${v}" is not an RFC 8176 method (such as pwd, mfa, otp, hwk, swk)`);
        return v;
      case 'method': {
        const m = v.toUpperCase();
        if (!METHOD.test(m)) throw new PolicyError(where, `"${v}" is not an HTTP method`);
        return m;
      }
      case 'country': {
        const code = v.toUpperCase();
        if (!COUNTRIES.has(code)) throw new PolicyError(where, `"${v}" is not an ISO 3166-1 alpha-2 country code (or XX, T1)`);
        return code;
      }
      case 'caller':
        if (!(CALLERS as readonly string[]).includes(v)) throw new PolicyError(where, `"${v}" is not a kind of caller (${CALLERS.join(', ')})`);
        return v;
      case 'client':
        if (!CLIENT_ID.test(v)) throw new PolicyError(where, `"${v}" is not a client id (such as cli_Ab3dE5)`);
        return v;
      case 'groups':
      case 'roles':
        return v;
    }
  });
}

function example(fact: ListFact): string {
  return { email: 'dana@example.com', domain: 'example.com', groups: 'eng', roles: 'ops', amr: 'mfa', method: 'GET', country: 'DE', caller: 'person', client: 'cli_Ab3dE5' }[fact];
}

/**
 * A path glob below the route: `/` then segments; `*` is exactly one segment, `**` any number
 * (none included). Compared folded, as route prefixes are (util/fold-case.ts), so that an origin
 * that ignores case cannot be reached past a `deny` by changing case.
 */
function glob(raw: unknown, at: string): string[] {
  if (typeof raw !== 'string' || !raw.startsWith('/')) throw new PolicyError(at, 'must be a path glob below the route, starting with "/", such as "/reports/**"');
  const segments = raw.split('/').filter(Boolean);
  segments.forEach((s, i) => {
    if (s === '*' || s === '**') {
      if (s === '**' && segments[i - 1] === '**') throw new PolicyError(at, '"**/**" says no more than "**"');
      return;
    }
    if (s.includes('*')) throw new PolicyError(at, `"${s}": "*" and "**" stand for whole segments only`);
    if (!GLOB_SEGMENT.test(s) || s === '.' || s === '..') throw new PolicyError(at, `"${s}" is not a plain path segment (no ?, #, [, ], {, }, %, ;, \\, control characters or dot segments)`);
  });
  return segments.map((s) => (s === '*' || s === '**' ? s : foldSegment(s)));
}

/**
 * How deep `all`, `any` and `not` may nest: far beyond a readable rule, and shallow enough that
 * checking and evaluating (both recursive) cannot run out of stack.
 */
const MAX_DEPTH = 16;

function condition(raw: unknown, at: string, found: { groupsAt: string | null }, depth = 0): Condition {
  if (depth > MAX_DEPTH) throw new PolicyError(at, `conditions nest more than ${MAX_DEPTH} deep: write the rule flatter`);
  if (!isObject(raw)) throw new PolicyError(at, 'must be a condition: an object of facts, such as { groups = ["eng"] }');
  const keys = Object.keys(raw);
  if (keys.length === 0) throw new PolicyError(at, 'is empty: a condition names at least one fact');
  const parts = keys.map((key): Condition => {
    const value = raw[key];
    const where = `${at}.${key}`;
    switch (key) {
      case 'all':
      case 'any':
        if (!Array.isArray(value) || value.length === 0) throw new PolicyError(where, 'must be a non-empty list of conditions');
        return { kind: key, of: value.map((c, i) => condition(c, `${where}[${i}]`, found, depth + 1)) };
      case 'not':
        if (Array.isArray(value)) throw new PolicyError(where, 'takes one condition (wrap several in all = [...] or any = [...])');
        return { kind: 'not', of: condition(value, where, found, depth + 1) };
      case 'path':
        if (!Array.isArray(value) || value.length === 0) throw new PolicyError(where, 'must be a non-empty list of path globs, e.g. path = ["/reports/**"]');
        return { kind: 'path', globs: value.map((g, i) => glob(g, `${where}[${i}]`)) };
      case 'ip':
        if (!Array.isArray(value) || value.length === 0) throw new PolicyError(where, 'must be a non-empty list of CIDR ranges, e.g. ip = ["192.0.2.0/24", "2001:db8::/32"]');
        return {
          kind: 'ip',
          ranges: value.map((r, i) => {
            if (typeof r !== 'string') throw new PolicyError(`${where}[${i}]`, 'must be a CIDR range as a string');
            const range = parseCidr(r.trim());
            if (typeof range === 'string') throw new PolicyError(`${where}[${i}]`, range);
            return range;
          }),
        };
      case 'signed_in_within':
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_SIGN_IN_AGE) {
          throw new PolicyError(where, `must be a whole number of seconds from 1 to ${MAX_SIGN_IN_AGE}`);
        }
        return { kind: 'signed_in_within', seconds: value };
      default: {
        const fact = LIST_FACTS.find((f) => f === key);
        if (!fact) throw new PolicyError(where, `unknown fact (known: ${FACTS.join(', ')})`);
        const values = listValues(fact, value, where);
        if (fact === 'groups' && values.some((g) => !isDirectoryGroupName(g))) found.groupsAt ??= where;
        // HEAD is GET without the body (the origin runs its GET handler): a rule on GET covers it.
        if (fact === 'method' && values.includes('GET') && !values.includes('HEAD')) values.push('HEAD');
        return { kind: fact, values };
      }
    }
  });
  // The keys of one object must all hold.
  return parts.length === 1 ? parts[0]! : { kind: 'all', of: parts };
}

/**
 * True if the condition holds only for a service the rule names: it requires `caller` with
 * "service" or a `client` (itself, or as one of the facts an `all` requires, or in every branch
 * of an `any`). Only such an allow rule admits a service (proxy/policy.ts): a rule written for
 * people (`method = ["GET"]` alone) never lets a service in, however little it asks of a person.
 */
export function namesServices(c: Condition): boolean {
  switch (c.kind) {
    case 'caller':
      return c.values.includes('service');
    case 'client':
      return true;
    case 'all':
      return c.of.some(namesServices);
    case 'any':
      return c.of.every(namesServices);
    default:
      return false;
  }
}

/** True if some allow rule of the policy admits services ({@link namesServices}). */
export function admitsServices(policy: Policy): boolean {
  return policy.allow.some((rule) => namesServices(rule.condition));
}

type Truth = 'always' | 'never' | 'maybe';

/**
 * What a condition can be, whatever the request: sound (an `always` or `never` is certain) and
 * cheap (anything unclear is `maybe`). `caller` listing every kind of caller always holds.
 */
function truth(c: Condition): Truth {
  switch (c.kind) {
    case 'all': {
      const parts = c.of.map(truth);
      return parts.includes('never') ? 'never' : parts.every((t) => t === 'always') ? 'always' : 'maybe';
    }
    case 'any': {
      const parts = c.of.map(truth);
      return parts.includes('always') ? 'always' : parts.every((t) => t === 'never') ? 'never' : 'maybe';
    }
    case 'not': {
      const t = truth(c.of);
      return t === 'always' ? 'never' : t === 'never' ? 'always' : 'maybe';
    }
    case 'caller':
      return CALLERS.every((k) => c.values.includes(k)) ? 'always' : 'maybe';
    default:
      return 'maybe';
  }
}

/** One text for conditions that say the same (key order and value order do not matter). */
function canonical(c: Condition): string {
  switch (c.kind) {
    case 'all':
    case 'any':
      return `${c.kind}(${c.of.map(canonical).sort().join(',')})`;
    case 'not':
      return `not(${canonical(c.of)})`;
    case 'path':
      return `path(${c.globs.map((g) => `/${g.join('/')}`).sort().join(',')})`;
    case 'ip':
      return `ip(${c.ranges.map((r) => `${r.bytes.join('.')}/${r.bits}`).sort().join(',')})`;
    case 'signed_in_within':
      return `signed_in_within(${c.seconds})`;
    default:
      return `${c.kind}(${[...new Set(c.values)].sort().join(',')})`;
  }
}

function rules(raw: unknown, name: 'allow' | 'deny', found: { groupsAt: string | null }): Rule[] {
  if (!Array.isArray(raw)) throw new PolicyError(name, `must be a list of conditions, e.g. ${name} = [{ groups = ["eng"] }]`);
  return raw.map((c, i) => ({ label: `${name}[${i}]`, condition: condition(c, `${name}[${i}]`, found) }));
}

const BINDING = /^service:([A-Z_][A-Z0-9_]*)$/i;

/** Refuses a policy that allows no one: no allow rule, a deny that always holds, or an allow rule that cannot. */
function checkSatisfiable(allow: readonly Rule[], deny: readonly Rule[]): void {
  if (allow.length === 0) throw new PolicyError('allow', 'lists no condition: the route would allow no one');
  for (const rule of deny) {
    if (truth(rule.condition) === 'always') throw new PolicyError(rule.label, 'holds for every request: the route would allow no one (deny wins)');
  }
  const denied = new Map(deny.map((r) => [canonical(r.condition), r.label]));
  for (const rule of allow) {
    if (truth(rule.condition) === 'never') throw new PolicyError(rule.label, 'can never hold');
    const same = denied.get(canonical(rule.condition));
    if (same) throw new PolicyError(rule.label, `is the same condition as ${same}, so it never allows anyone (deny wins)`);
  }
}

/** The `policy` of a route, checked and compiled; throws a {@link PolicyError} naming the rule. */
export function parsePolicy(raw: unknown): Policy {
  if (!isObject(raw)) throw new PolicyError('', 'policy must be an object: policy = { allow = [ ... ], deny = [ ... ] }');
  for (const key of Object.keys(raw)) {
    if (key !== 'allow' && key !== 'deny' && key !== 'external') throw new PolicyError(key, 'unknown policy field (known: allow, deny, external)');
  }
  const found = { groupsAt: null as string | null };
  const allow = rules(raw.allow ?? [], 'allow', found);
  const deny = rules(raw.deny ?? [], 'deny', found);
  checkSatisfiable(allow, deny);
  let external: string | null = null;
  if (raw.external !== undefined) {
    const match = typeof raw.external === 'string' ? BINDING.exec(raw.external.trim()) : null;
    if (!match) throw new PolicyError('external', 'must name a service binding: external = "service:NAME"');
    external = match[1]!;
  }
  return { allow, deny, external, groupsAt: found.groupsAt };
}

export interface AllowShorthand {
  emails?: readonly string[];
  domains?: readonly string[];
  roles?: readonly string[];
  groups?: readonly string[];
}

/**
 * Today's `allow = { emails, domains, roles, groups }` as a policy: one allow rule per non-empty list,
 * no deny. It decides exactly as the allow list always did (an empty list matched no one).
 * Not checked: {@link shorthandPolicy} callers decide whether allowing no one is an error.
 */
export function shorthandPolicy(allow: AllowShorthand): Policy {
  const rules: Rule[] = [];
  if (allow.emails?.length) rules.push({ label: 'allow.emails', condition: { kind: 'email', values: allow.emails } });
  if (allow.domains?.length) rules.push({ label: 'allow.domains', condition: { kind: 'domain', values: allow.domains } });
  if (allow.roles?.length) rules.push({ label: 'allow.roles', condition: { kind: 'roles', values: allow.roles } });
  if (allow.groups?.length) rules.push({ label: 'allow.groups', condition: { kind: 'groups', values: allow.groups } });
  return { allow: rules, deny: [], external: null, groupsAt: allow.groups?.some((g) => !isDirectoryGroupName(g)) ? 'allow.groups' : null };
}

/** {@link shorthandPolicy}, refused if it allows no one (every list empty). */
export function checkedShorthandPolicy(allow: AllowShorthand): Policy {
  const policy = shorthandPolicy(allow);
  if (policy.allow.length === 0) throw new PolicyError('allow', 'lists no email, domain or role: the route would allow no one');
  return policy;
}

/** The route's policy (or its allow shorthand as one), or null; throws a {@link PolicyError}. */
export function routePolicy(route: Pick<RouteConfig, 'policy' | 'allow'>): Policy | null {
  if (route.policy !== undefined) return parsePolicy(route.policy);
  return route.allow !== undefined ? checkedShorthandPolicy(route.allow) : null;
}

/**
 * Every route's policy, compiled; a mistake is a ConfigError naming the route, the rule and the
 * field. A `groups` condition needs a configured provider that supplies groups, or the directory
 * (SCIM), or it could never hold.
 */
export function compileRoutePolicies(config: Config): ReadonlyMap<RouteConfig, Policy> {
  const compiled = new Map<RouteConfig, Policy>();
  for (const route of config.ROUTES) {
    let policy: Policy | null;
    try {
      policy = routePolicy(route);
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      throw new ConfigError('ROUTES', `route "${route.path}": ${route.policy !== undefined ? 'policy ' : ''}${e.message}`);
    }
    if (!policy) continue;
    // The directory supplies `scim:` groups whatever the providers: with SCIM_TOKEN, or with a
    // token an administrator creates at any time (so a condition on `scim:` groups alone is
    // never refused here).
    if (policy.groupsAt && providersWithGroups(config).length === 0 && config.SCIM_TOKEN === undefined) {
      throw new ConfigError('ROUTES', `route "${route.path}": policy ${policy.groupsAt}: no configured sign-in provider supplies groups (OpenID Connect, GitLab or GitHub; Google does not), and SCIM provisioning (SCIM_TOKEN) is off`);
    }
    compiled.set(route, policy);
  }
  return compiled;
}

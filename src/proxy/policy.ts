/**
 * Evaluates a route's policy (config/policy.ts compiled it once with the configuration): a
 * request passes when some `allow` rule holds and no `deny` rule does. Deny wins.
 *
 * A fact the request does not carry (forward-auth knows no trustworthy client IP or country,
 * and the method only from the proxy's header) is unknown, and a condition that depends on it is
 * unknown too (three-valued: `not` of unknown is unknown). Unknown fails closed both ways: an
 * allow rule must surely hold, a deny rule refuses unless it surely does not. An email or domain
 * that matches an address not yet verified is unknown too: signing up with someone else's
 * address cannot open a door, and an unproven address of one's own cannot slip past a deny.
 *
 * A service (README "Machines") is admitted only by an allow rule that names services
 * (config/policy.ts `namesServices`: `caller = ["service"]` or `client = [...]`); every other
 * allow rule is passed over for it. A person's facts (email, domain, groups, roles, amr,
 * signed_in_within) are unknown for a service, so a deny rule on one of them refuses a service
 * unless it also requires `caller = ["person"]`. `client` holds for a person only at a protected
 * resource, for the OAuth client acting for them.
 *
 * Per request: no parsing of the rules, and no allocation beyond the verdict, one small
 * evaluation record and, made at most once each, the lower-cased email, the folded path
 * segments and the parsed client address.
 */
import { isDirectoryGroupName, namesServices, type Caller, type Condition, type Policy, type Rule } from '../config/policy';
import type { AuthUser, ServiceCaller } from '../env';
import { foldSegment } from '../util/fold-case';
import { inRange, parseIp, type IpAddress } from '../util/ip';

/** What the gate knows of the request being authorised; null where it knows nothing trustworthy. */
export interface RequestFacts {
  method: string | null;
  /** The decoded path segments below the route's prefix. */
  segments: readonly string[] | null;
  /** From `CF-Connecting-IP` (the built-in proxy only). */
  ip: string | null;
  /** From `request.cf.country` (the built-in proxy only). */
  country: string | null;
  /** Unix seconds. */
  now: number;
}

export interface PolicyVerdict {
  allowed: boolean;
  /** The rule that decided (`deny[0]`, `allow[2]`), or `no allow matched`. */
  rule: string;
}

export const NO_ALLOW_MATCHED = 'no allow matched';

/** Who a policy decides on: a signed-in person or a service. */
export type Principal = AuthUser | ServiceCaller;

/** A service has `kind: 'service'`; a person's AuthUser has no `kind`. */
export function isService(principal: Principal): principal is ServiceCaller {
  return 'kind' in principal && principal.kind === 'service';
}

export function callerOf(principal: Principal): Caller {
  return isService(principal) ? 'service' : 'person';
}

const FALSE = 0;
const TRUE = 1;
const UNKNOWN = 2;
type Tri = typeof FALSE | typeof TRUE | typeof UNKNOWN;

/** Per-request values computed at most once, on first use. */
class Evaluation {
  private email?: string;
  private folded?: string[];
  private address?: IpAddress | null;
  /** The person, or null for a service (whose person facts are all unknown). */
  readonly user: AuthUser | null;
  constructor(
    readonly principal: Principal,
    readonly facts: RequestFacts,
  ) {
    this.user = isService(principal) ? null : principal;
  }

  lowerEmail(user: AuthUser): string {
    return (this.email ??= user.email.toLowerCase());
  }

  segments(): string[] | null {
    if (this.facts.segments === null) return null;
    return (this.folded ??= this.facts.segments.map(foldSegment));
  }

  ip(): IpAddress | null {
    if (this.address === undefined) this.address = this.facts.ip === null ? null : parseIp(this.facts.ip);
    return this.address;
  }
}

function anyOf(values: readonly string[], held: readonly string[]): boolean {
  for (const v of values) if (held.includes(v)) return true;
  return false;
}

/**
 * Whether `held` has one of `values`: exactly, or for a directory group without regard to case
 * (its name is one name whatever the case: the directory refuses two that differ only in case,
 * and may rename `Contractors` to `contractors`, which must not slip past a deny).
 */
function inAnyGroup(values: readonly string[], held: readonly string[]): boolean {
  if (anyOf(values, held)) return true;
  for (const v of values) {
    if (!isDirectoryGroupName(v)) continue;
    const wanted = v.toLowerCase();
    for (const g of held) if (isDirectoryGroupName(g) && g.toLowerCase() === wanted) return true;
  }
  return false;
}

/**
 * `*` is one segment, `**` any number of them. Wildcard matching with backtracking only to the
 * latest `**` (a later `**` can absorb whatever an earlier one would have): at most path × glob
 * steps, where trying every split for every `**` would be exponential in their number, and the
 * path is the requester's.
 */
function globMatches(glob: readonly string[], path: readonly string[]): boolean {
  const globLength = glob.length;
  let gi = 0;
  let pi = 0;
  let starGi = -1;
  let starPi = 0;
  while (pi < path.length) {
    if (gi < globLength) {
      const g = glob[gi]!;
      if (g === '**') {
        starGi = gi++;
        starPi = pi;
        continue;
      }
      if (g === '*' || g === path[pi]) {
        gi++;
        pi++;
        continue;
      }
    }
    // A mismatch: let the latest `**` take one more segment, or fail if there is none.
    if (starGi === -1) return false;
    gi = starGi + 1;
    pi = ++starPi;
  }
  while (gi < globLength && glob[gi] === '**') gi++;
  return gi === globLength;
}

function test(c: Condition, e: Evaluation): Tri {
  switch (c.kind) {
    case 'all': {
      let result: Tri = TRUE;
      for (const part of c.of) {
        const t = test(part, e);
        if (t === FALSE) return FALSE;
        if (t === UNKNOWN) result = UNKNOWN;
      }
      return result;
    }
    case 'any': {
      let result: Tri = FALSE;
      for (const part of c.of) {
        const t = test(part, e);
        if (t === TRUE) return TRUE;
        if (t === UNKNOWN) result = UNKNOWN;
      }
      return result;
    }
    case 'not': {
      const t = test(c.of, e);
      return t === UNKNOWN ? UNKNOWN : t === TRUE ? FALSE : TRUE;
    }
    // An address that matches but is not yet proven is unknown: it may be the user's (a deny or a
    // `not` must not let them past) or a stranger's (an allow must not let them in).
    case 'email': {
      const user = e.user;
      if (user === null) return UNKNOWN;
      if (!c.values.includes(e.lowerEmail(user))) return FALSE;
      return user.emailVerified ? TRUE : UNKNOWN;
    }
    case 'domain': {
      const user = e.user;
      if (user === null) return UNKNOWN;
      const email = e.lowerEmail(user);
      if (!c.values.includes(email.slice(email.lastIndexOf('@') + 1))) return FALSE;
      return user.emailVerified ? TRUE : UNKNOWN;
    }
    case 'groups': {
      // A member of a listed group, whoever vouches for it. Otherwise "in none" only where each
      // listed name's source vouches (the directory for `scim:` names, the provider for the
      // rest); a source nobody vouches for (a password sign-in, groups too old) is unknown, not none.
      const user = e.user;
      if (user === null) return UNKNOWN;
      if (inAnyGroup(c.values, user.groups)) return TRUE;
      const vouched = (name: string) => (isDirectoryGroupName(name) ? user.scimGroupsKnown === true : user.groupsKnown);
      return c.values.every(vouched) ? FALSE : UNKNOWN;
    }
    case 'roles':
      if (e.user === null) return UNKNOWN;
      return anyOf(c.values, e.user.roles) ? TRUE : FALSE;
    case 'amr':
      if (e.user === null) return UNKNOWN;
      return anyOf(c.values, e.user.amr) ? TRUE : FALSE;
    case 'signed_in_within':
      if (e.user === null) return UNKNOWN;
      return e.facts.now - e.user.authTime <= c.seconds ? TRUE : FALSE;
    case 'caller':
      return c.values.includes(callerOf(e.principal)) ? TRUE : FALSE;
    case 'client': {
      // A service is the one its token names; a person is acted for by an OAuth client only at a
      // protected resource (a deny on a client must hold there too), and by none elsewhere.
      const client = e.principal.clientId;
      return client !== undefined && c.values.includes(client) ? TRUE : FALSE;
    }
    case 'method':
      if (e.facts.method === null) return UNKNOWN;
      return c.values.includes(e.facts.method.toUpperCase()) ? TRUE : FALSE;
    case 'country':
      if (e.facts.country === null) return UNKNOWN;
      return c.values.includes(e.facts.country.toUpperCase()) ? TRUE : FALSE;
    case 'path': {
      const path = e.segments();
      if (path === null) return UNKNOWN;
      for (const glob of c.globs) if (globMatches(glob, path)) return TRUE;
      return FALSE;
    }
    case 'ip': {
      const address = e.ip();
      if (address === null) return UNKNOWN;
      for (const range of c.ranges) if (inRange(address, range)) return TRUE;
      return FALSE;
    }
  }
}

/**
 * The first rule that holds (for deny rules, `refuses`: that may hold), or null. For a service,
 * an allow rule that does not name services is passed over.
 */
function first(rules: readonly Rule[], e: Evaluation, refuses: boolean): Rule | null {
  for (const rule of rules) {
    if (!refuses && e.user === null && !namesServices(rule.condition)) continue;
    const t = test(rule.condition, e);
    if (t === TRUE || (refuses && t === UNKNOWN)) return rule;
  }
  return null;
}

/** Whether `principal` may make this request under `policy`, and the rule that decided. */
export function decide(policy: Policy, principal: Principal, facts: RequestFacts): PolicyVerdict {
  const e = new Evaluation(principal, facts);
  const denied = first(policy.deny, e, true);
  if (denied) return { allowed: false, rule: denied.label };
  const allowed = first(policy.allow, e, false);
  return allowed ? { allowed: true, rule: allowed.label } : { allowed: false, rule: NO_ALLOW_MATCHED };
}

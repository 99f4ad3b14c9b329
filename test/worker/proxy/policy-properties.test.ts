/**
 * Properties of route policies, for random policies and requests (fast-check):
 * - a deny rule that holds always refuses, whatever the allow rules say;
 * - a policy decides as a plain reference reading of its rules (some allow surely holds, no deny
 *   may hold);
 * - the `allow` shorthand decides exactly as the allow list did before policies existed (the
 *   old function is kept here as the oracle), and one refused at start-up allowed no one.
 */
import fc from 'fast-check';
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { parsePolicy, PolicyError, routePolicy, type Policy } from '../../../src/config/policy';
import { routeSchema } from '../../../src/config/routes-schema';
import type { AuthUser } from '../../../src/env';
import { decide, type RequestFacts } from '../../../src/proxy/policy';

const NOW = 1_800_000_000;

/** The allow list's decision before policies existed: the oracle for the shorthand. */
interface OldAllow {
  emails?: string[];
  domains?: string[];
  roles?: string[];
}
function oldIsAllowed(allow: OldAllow | undefined, user: AuthUser): boolean {
  if (!allow) return true;
  const email = user.email.toLowerCase();
  const domain = email.slice(email.lastIndexOf('@') + 1);
  if (user.emailVerified && allow.emails?.includes(email)) return true;
  if (user.emailVerified && allow.domains?.includes(domain)) return true;
  if (allow.roles?.some((r) => user.roles.includes(r))) return true;
  return false;
}

const GROUPS = ['eng', 'ops', 'sales'];
const ROLES = ['admin', 'billing', 'ops'];
const METHODS = ['GET', 'POST', 'DELETE'];
const COUNTRIES = ['DE', 'FR', 'US'];
const EMAILS = ['dana@example.com', 'erin@example.org', 'finn@corp.example'];
const SEGMENTS = ['a', 'b', 'admin'];

const someOf = (values: string[]) => fc.uniqueArray(fc.constantFrom(...values), { minLength: 1, maxLength: values.length });

type Raw = Record<string, unknown>;

/** Random conditions over facts a reference reading can decide without the compiler. */
const condition: fc.Arbitrary<Raw> = fc.letrec<{ c: Raw }>((tie) => ({
  c: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ groups: someOf(GROUPS) }),
    fc.record({ roles: someOf(ROLES) }),
    fc.record({ method: someOf(METHODS) }),
    fc.record({ country: someOf(COUNTRIES) }),
    fc.record({ email: someOf(EMAILS) }),
    fc.record({ path: someOf(['/a/**', '/*/b', '/admin', '/**', '/**/a/**/b', '/*/**/admin/**', '/**/*/a']) }),
    fc.record({ groups: someOf(GROUPS), method: someOf(METHODS) }),
    fc.record({ any: fc.array(tie('c'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ all: fc.array(tie('c'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ not: tie('c') }),
  ),
})).c;

const user = fc.record({
  email: fc.constantFrom(...EMAILS, 'Dana@Example.com', 'x@corp.example'),
  emailVerified: fc.boolean(),
  groups: fc.uniqueArray(fc.constantFrom(...GROUPS)),
  roles: fc.uniqueArray(fc.constantFrom(...ROLES)),
}).map(
  (u): AuthUser => ({ ...u, groupsKnown: true, id: 'u', sessionId: 's', tokenId: 't', tokenExpiresAt: NOW + 600, issuedAt: NOW, amr: ['pwd'], authTime: NOW - 60 }),
);

const facts = fc.record({
  method: fc.constantFrom(...METHODS),
  country: fc.constantFrom(...COUNTRIES),
  segments: fc.array(fc.constantFrom(...SEGMENTS, 'ADMIN'), { maxLength: 5 }),
}).map((f): RequestFacts => ({ ...f, ip: '203.0.113.7', now: NOW }));

function globHolds(glob: string[], path: string[]): boolean {
  if (glob.length === 0) return path.length === 0;
  const [g, ...rest] = glob;
  if (g === '**') return path.some((_, i) => globHolds(rest, path.slice(i))) || globHolds(rest, []);
  return path.length > 0 && (g === '*' || g === path[0]) && globHolds(rest, path.slice(1));
}

/**
 * A plain reading of a raw condition, independent of config/policy.ts and proxy/policy.ts, in
 * three values: null where it is unknown (a matching address that is not verified).
 */
function holds(c: Raw, u: AuthUser, f: RequestFacts): boolean | null {
  const parts = Object.entries(c).map(([key, value]): boolean | null => {
    const list = value as string[];
    switch (key) {
      case 'groups':
        return list.some((g) => u.groups.includes(g));
      case 'roles':
        return list.some((r) => u.roles.includes(r));
      case 'method':
        return list.includes(f.method!);
      case 'country':
        return list.includes(f.country!);
      case 'email':
        return list.includes(u.email.toLowerCase()) ? (u.emailVerified ? true : null) : false;
      case 'path':
        return list.some((g) => globHolds(g.split('/').filter(Boolean), f.segments!.map((s) => s.toLowerCase())));
      case 'any': {
        const each = (value as Raw[]).map((x) => holds(x, u, f));
        return each.includes(true) ? true : each.includes(null) ? null : false;
      }
      case 'all':
        return allOf((value as Raw[]).map((x) => holds(x, u, f)));
      case 'not': {
        const t = holds(value as Raw, u, f);
        return t === null ? null : !t;
      }
      default:
        throw new Error(`unexpected fact ${key}`);
    }
  });
  return allOf(parts);
}

function allOf(each: (boolean | null)[]): boolean | null {
  return each.includes(false) ? false : each.includes(null) ? null : true;
}

/** The policy, or null where start-up would refuse it (e.g. an allow rule equal to a deny rule). */
function compiled(raw: { allow: Raw[]; deny: Raw[] }): Policy | null {
  try {
    return parsePolicy(raw);
  } catch (e) {
    if (e instanceof PolicyError) return null;
    throw e;
  }
}

const rules = fc.record({ allow: fc.array(condition, { minLength: 1, maxLength: 3 }), deny: fc.array(condition, { maxLength: 3 }) });

describe('policy properties', () => {
  it('a deny rule that holds always refuses, naming a deny rule', () => {
    fc.assert(
      fc.property(rules, user, facts, (raw, u, f) => {
        const policy = compiled(raw);
        fc.pre(policy !== null && raw.deny.some((d) => holds(d, u, f) === true));
        const verdict = decide(policy!, u, f);
        expect(verdict.allowed).toBe(false);
        expect(verdict.rule).toMatch(/^deny\[\d+\]$/);
      }),
      { numRuns: 400 },
    );
  });

  it('a policy allows exactly when some allow rule holds and no deny rule does', () => {
    fc.assert(
      fc.property(rules, user, facts, (raw, u, f) => {
        const policy = compiled(raw);
        fc.pre(policy !== null);
        // Unknown fails closed: an allow rule must surely hold, a deny rule refuses unless it surely does not.
        const expected = raw.allow.some((a) => holds(a, u, f) === true) && !raw.deny.some((d) => holds(d, u, f) !== false);
        expect(decide(policy!, u, f).allowed).toBe(expected);
      }),
      { numRuns: 400 },
    );
  });

  it('the allow shorthand decides exactly as the allow list always did', () => {
    const list = (values: string[]) => fc.option(fc.uniqueArray(fc.constantFrom(...values), { maxLength: values.length }), { nil: undefined });
    const shorthand = fc.record(
      { emails: list([...EMAILS, 'DANA@example.com']), domains: list(['example.com', 'corp.example', 'Example.org']), roles: list(ROLES) },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(shorthand, fc.array(user, { minLength: 1, maxLength: 5 }), facts, (allow, users, f) => {
        // As the configuration loads it: the schema, then the compiler.
        const parsed = v.safeParse(routeSchema, { path: '/x', origin: 'https://o.example', auth: 'required', allow });
        expect(parsed.success).toBe(true);
        const route = parsed.success ? parsed.output : null;
        let policy: Policy | null;
        try {
          policy = routePolicy(route!);
        } catch (e) {
          if (!(e instanceof PolicyError)) throw e;
          // Refused when the configuration loads only when it could let no one in.
          expect(e.message).toContain('would allow no one');
          for (const u of users) expect(oldIsAllowed(allow, u)).toBe(false);
          return;
        }
        for (const u of users) expect(decide(policy!, u, f).allowed).toBe(oldIsAllowed(route!.allow, u));
      }),
      { numRuns: 400 },
    );
  });
});

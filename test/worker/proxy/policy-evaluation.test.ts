/**
 * How a route policy decides (README "Policy"): each fact, nesting with all/any/not, deny
 * winning, facts the request does not carry failing closed, and the `allow` shorthand as a
 * policy. Evaluated directly on the compiled policy, as the gate does.
 */
import { describe, expect, it } from 'vitest';
import { parsePolicy, shorthandPolicy, type Policy } from '../../../src/config/policy';
import type { AuthUser } from '../../../src/env';
import { decide, type RequestFacts } from '../../../src/proxy/policy';
import { parseCidr, parseIp } from '../../../src/util/ip';

const NOW = 1_800_000_000;

function person(over: Partial<AuthUser> = {}): AuthUser {
  return {
    id: 'u1',
    email: 'Dana@Example.com',
    emailVerified: true,
    roles: [],
    groups: [],
    groupsKnown: true,
    sessionId: 's1',
    tokenId: 't1',
    tokenExpiresAt: NOW + 600,
    issuedAt: NOW,
    amr: ['pwd'],
    authTime: NOW - 100,
    ...over,
  };
}

function request(over: Partial<RequestFacts> = {}): RequestFacts {
  return { method: 'GET', segments: [], ip: '203.0.113.7', country: 'DE', now: NOW, ...over };
}

/** Whether a policy whose only allow rule is `condition` lets the request through. */
const passes = (condition: unknown, user = person(), facts = request()) => decide(parsePolicy({ allow: [condition] }), user, facts).allowed;

describe('each fact', () => {
  it('email counts only when verified, compared case-insensitively', () => {
    expect(passes({ email: ['dana@example.com'] })).toBe(true);
    expect(passes({ email: ['DANA@example.COM'] })).toBe(true);
    expect(passes({ email: ['dana@example.com'] }, person({ emailVerified: false }))).toBe(false);
    expect(passes({ email: ['erin@example.com'] })).toBe(false);
  });

  it('domain counts only when verified, and is the whole part after "@"', () => {
    expect(passes({ domain: ['example.com'] })).toBe(true);
    expect(passes({ domain: ['example.com'] }, person({ emailVerified: false }))).toBe(false);
    expect(passes({ domain: ['ample.com'] })).toBe(false);
    expect(passes({ domain: ['example.com'] }, person({ email: 'x@sub.example.com' }))).toBe(false);
  });

  it('groups, roles and amr hold when the user has any listed value', () => {
    expect(passes({ groups: ['eng', 'ops'] }, person({ groups: ['ops'] }))).toBe(true);
    expect(passes({ groups: ['eng'] }, person({ groups: ['Eng'] }))).toBe(false);
    expect(passes({ roles: ['billing'] }, person({ roles: ['billing'] }))).toBe(true);
    expect(passes({ roles: ['billing'] }, person({ groups: ['billing'] }))).toBe(false);
    expect(passes({ amr: ['mfa'] }, person({ amr: ['pwd', 'mfa'] }))).toBe(true);
    expect(passes({ amr: ['mfa'] })).toBe(false);
  });

  it('signed_in_within holds for a sign-in at most that many seconds old', () => {
    expect(passes({ signed_in_within: 100 })).toBe(true);
    expect(passes({ signed_in_within: 99 })).toBe(false);
  });

  it('method is compared upper-case', () => {
    expect(passes({ method: ['get', 'HEAD'] })).toBe(true);
    expect(passes({ method: ['POST'] })).toBe(false);
  });

  it('path globs below the route: "*" one segment, "**" any number, compared case-folded', () => {
    const at = (...segments: string[]) => request({ segments });
    expect(passes({ path: ['/reports/*'] }, person(), at('reports', '2026'))).toBe(true);
    expect(passes({ path: ['/reports/*'] }, person(), at('reports'))).toBe(false);
    expect(passes({ path: ['/reports/*'] }, person(), at('reports', '2026', 'q1'))).toBe(false);
    expect(passes({ path: ['/reports/**'] }, person(), at('reports'))).toBe(true);
    expect(passes({ path: ['/reports/**'] }, person(), at('reports', 'a', 'b'))).toBe(true);
    expect(passes({ path: ['/**/edit'] }, person(), at('a', 'b', 'edit'))).toBe(true);
    expect(passes({ path: ['/**/edit'] }, person(), at('a', 'edit', 'b'))).toBe(false);
    expect(passes({ path: ['/'] }, person(), at())).toBe(true);
    expect(passes({ path: ['/'] }, person(), at('x'))).toBe(false);
    // An origin that ignores case serves /ADMIN as /admin: the policy sees it so too.
    expect(passes({ path: ['/admin/**'] }, person(), at('ADMİN', 'x'))).toBe(true);
  });

  it('ip ranges, IPv4 and IPv6, an IPv4-mapped address as IPv4', () => {
    expect(passes({ ip: ['203.0.113.0/24'] })).toBe(true);
    expect(passes({ ip: ['203.0.112.0/24'] })).toBe(false);
    expect(passes({ ip: ['203.0.113.7'] })).toBe(true);
    expect(passes({ ip: ['2001:db8::/32'] }, person(), request({ ip: '2001:db8:1::5' }))).toBe(true);
    expect(passes({ ip: ['2001:db8::/32'] }, person(), request({ ip: '2001:db9::5' }))).toBe(false);
    expect(passes({ ip: ['203.0.113.0/28'] }, person(), request({ ip: '::ffff:203.0.113.9' }))).toBe(true);
    expect(passes({ ip: ['::/0'] })).toBe(false);
    expect(passes({ ip: ['10.0.0.0/9'] }, person(), request({ ip: '10.127.255.255' }))).toBe(true);
    expect(passes({ ip: ['10.0.0.0/9'] }, person(), request({ ip: '10.128.0.0' }))).toBe(false);
  });

  it('addresses are read as RFC 4291 / dotted-quad text, nothing looser', () => {
    const bytes = (text: string) => {
      const a = parseIp(text);
      return a && [a.v4 ? 4 : 6, ...a.bytes];
    };
    expect(bytes('::')).toEqual([6, ...new Array(16).fill(0)]);
    expect(bytes('::1')).toEqual([6, ...new Array(15).fill(0), 1]);
    expect(bytes('1::')).toEqual([6, 0, 1, ...new Array(14).fill(0)]);
    expect(bytes('1:2:3:4:5:6:7:8')).toEqual([6, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    expect(bytes('1:2:3:4:5:6:1.2.3.4')).toEqual([6, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4]);
    expect(bytes('::FFFF:192.0.2.1')).toEqual([4, 192, 0, 2, 1]);
    for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', '1:2:3:4:5:6:7:1.2.3.4', 'fe80::1%eth0', '12345::', '01.2.3.4', '1.2.3', '1.2.3.256', ' 1.2.3.4', '']) {
      expect(parseIp(bad), bad).toBeNull();
    }
    expect(parseCidr('::ffff:198.51.100.0/120')).toMatchObject({ v4: true, bits: 24 });
    expect(parseCidr('::ffff:0.0.0.0/95')).toBe('an IPv4-mapped range must be /96 or longer');
    expect(parseCidr('10.0.0.0/08')).toMatch(/prefix length/);
  });

  it('country from the edge', () => {
    expect(passes({ country: ['de', 'AT'] })).toBe(true);
    expect(passes({ country: ['FR'] })).toBe(false);
  });

  it('caller: a signed-in user is a person, not a service', () => {
    expect(passes({ caller: ['person'] })).toBe(true);
    expect(passes({ caller: ['service'] })).toBe(false);
  });
});

describe('combining conditions', () => {
  it('every key of one condition must hold', () => {
    const c = { groups: ['eng'], method: ['GET'] };
    expect(passes(c, person({ groups: ['eng'] }))).toBe(true);
    expect(passes(c, person({ groups: ['eng'] }), request({ method: 'POST' }))).toBe(false);
    expect(passes(c, person({ groups: ['ops'] }))).toBe(false);
  });

  it('all, any and not nest', () => {
    const c = { any: [{ groups: ['eng'] }, { all: [{ roles: ['ops'] }, { not: { method: ['DELETE'] } }] }] };
    expect(passes(c, person({ groups: ['eng'] }), request({ method: 'DELETE' }))).toBe(true);
    expect(passes(c, person({ roles: ['ops'] }))).toBe(true);
    expect(passes(c, person({ roles: ['ops'] }), request({ method: 'DELETE' }))).toBe(false);
    expect(passes(c, person())).toBe(false);
  });

  it('deny wins over any allow, and the verdict names the rule', () => {
    const policy = parsePolicy({ allow: [{ groups: ['eng'] }, { roles: ['ops'] }], deny: [{ country: ['RU'] }, { method: ['DELETE'] }] });
    const eng = person({ groups: ['eng'], roles: ['ops'] });
    expect(decide(policy, eng, request())).toEqual({ allowed: true, rule: 'allow[0]' });
    expect(decide(policy, person({ roles: ['ops'] }), request())).toEqual({ allowed: true, rule: 'allow[1]' });
    expect(decide(policy, eng, request({ method: 'DELETE' }))).toEqual({ allowed: false, rule: 'deny[1]' });
    expect(decide(policy, eng, request({ country: 'RU' }))).toEqual({ allowed: false, rule: 'deny[0]' });
    expect(decide(policy, person(), request())).toEqual({ allowed: false, rule: 'no allow matched' });
  });
});

describe('facts the request does not carry fail closed', () => {
  const unknown = request({ ip: null, country: null, method: null, segments: null });

  it('an allow rule that needs them does not hold, nor does its negation', () => {
    expect(passes({ country: ['DE'] }, person(), unknown)).toBe(false);
    expect(passes({ not: { country: ['RU'] } }, person(), unknown)).toBe(false);
    expect(passes({ ip: ['0.0.0.0/0'] }, person(), unknown)).toBe(false);
    expect(passes({ method: ['GET'] }, person(), unknown)).toBe(false);
    expect(passes({ path: ['/**'] }, person(), unknown)).toBe(false);
  });

  it('a deny rule that needs them refuses, unless the rest of it surely does not hold', () => {
    const policy = parsePolicy({ allow: [{ roles: ['ops'] }], deny: [{ country: ['RU'], roles: ['intern'] }] });
    expect(decide(policy, person({ roles: ['ops', 'intern'] }), unknown)).toEqual({ allowed: false, rule: 'deny[0]' });
    expect(decide(policy, person({ roles: ['ops'] }), unknown)).toEqual({ allowed: true, rule: 'allow[0]' });
    // Known facts decide as usual.
    expect(decide(policy, person({ roles: ['ops', 'intern'] }), request())).toEqual({ allowed: true, rule: 'allow[0]' });
  });

  it('an address the edge sent that does not parse is unknown too', () => {
    expect(passes({ ip: ['0.0.0.0/0'] }, person(), request({ ip: 'not-an-ip' }))).toBe(false);
  });
});

describe('the allow shorthand', () => {
  it('is one allow rule per non-empty list, named after the list', () => {
    const policy = shorthandPolicy({ emails: ['dana@example.com'], domains: [], roles: ['ops'] });
    expect(policy.allow.map((r) => r.label)).toEqual(['allow.emails', 'allow.roles']);
    expect(decide(policy, person(), request())).toEqual({ allowed: true, rule: 'allow.emails' });
    expect(decide(policy, person({ email: 'x@example.com', roles: ['ops'] }), request()).rule).toBe('allow.roles');
    expect(decide(shorthandPolicy({ emails: [] }), person(), request()).allowed).toBe(false);
  });
});

describe('an address not yet proven is unknown, not proof of being someone else', () => {
  // Anyone can sign up with an address they do not hold, and a changed address is unproven until
  // its mailbox answers: it must neither open an allow rule nor slip past a deny or a `not`.
  const contractor = person({ email: 'lee@contractor.example', emailVerified: false, roles: ['staff'] });

  it('a deny on a domain refuses an unverified address in it', () => {
    const policy = parsePolicy({ allow: [{ roles: ['staff'] }], deny: [{ domain: ['contractor.example'] }] });
    expect(decide(policy, contractor, request())).toEqual({ allowed: false, rule: 'deny[0]' });
    expect(decide(policy, person({ roles: ['staff'] }), request()).allowed).toBe(true);
  });

  it('a deny on an email refuses that unverified address', () => {
    const policy = parsePolicy({ allow: [{ roles: ['staff'] }], deny: [{ email: ['lee@contractor.example'] }] });
    expect(decide(policy, contractor, request()).allowed).toBe(false);
  });

  it('an allow rule with not = { domain } does not hold for an unverified address in that domain', () => {
    expect(passes({ roles: ['staff'], not: { domain: ['contractor.example'] } }, contractor)).toBe(false);
    expect(passes({ roles: ['staff'], not: { email: ['lee@contractor.example'] } }, contractor)).toBe(false);
    expect(passes({ roles: ['staff'], not: { domain: ['contractor.example'] } }, person({ roles: ['staff'] }))).toBe(true);
  });
});

describe('path globs cost a request little, whatever the path', () => {
  // Workers freeze the clock during computation, so the work is counted instead: every read of
  // the compiled glob (its length, a segment) is one step of matching.
  function countingGlob(segments: string[]) {
    const count = { reads: 0 };
    const glob = new Proxy(segments, {
      get(target, key, receiver) {
        count.reads++;
        return Reflect.get(target, key, receiver);
      },
    });
    return { glob, count };
  }

  it('several "**" against a long path that almost matches take steps in proportion to the path, not one try per way to split it', () => {
    const { glob, count } = countingGlob(['**', 'x', '**', 'x', '**', 'x', '**', 'y']);
    const policy: Policy = { allow: [{ label: 'allow[0]', condition: { kind: 'roles', values: ['staff'] } }], deny: [{ label: 'deny[0]', condition: { kind: 'path', globs: [glob] } }], external: null, groupsAt: null };
    const segments = Array.from({ length: 120 }, () => 'x');
    const staff = person({ roles: ['staff'] });
    expect(decide(policy, staff, request({ segments })).allowed).toBe(true);
    expect(decide(policy, staff, request({ segments: [...segments, 'y'] })).allowed).toBe(false);
    expect(decide(policy, staff, request({ segments: ['x', 'x', 'q', 'x', 'y'] })).allowed).toBe(false);
    expect(decide(policy, staff, request({ segments: ['x', 'x', 'q', 'x'] })).allowed).toBe(true);
    expect(count.reads).toBeLessThan(100 * (segments.length + 8));
  });
});

/**
 * How a route policy decides (README "Policy"): each fact, nesting with all/any/not, deny
 * winning, facts the request does not carry failing closed, and the `allow` shorthand as a
 * policy. Evaluated directly on the compiled policy, as the gate does.
 */
import { describe, expect, it } from 'vitest';
import { parsePolicy, shorthandPolicy } from '../../../src/config/policy';
import type { AuthUser } from '../../../src/env';
import { decide, type RequestFacts } from '../../../src/proxy/policy';

const NOW = 1_800_000_000;

function person(over: Partial<AuthUser> = {}): AuthUser {
  return {
    id: 'u1',
    email: 'Dana@Example.com',
    emailVerified: true,
    roles: [],
    groups: [],
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

  it('country from the edge', () => {
    expect(passes({ country: ['de', 'AT'] })).toBe(true);
    expect(passes({ country: ['FR'] })).toBe(false);
  });

  it('caller: every signed-in principal is a person today', () => {
    expect(passes({ caller: ['person'] })).toBe(true);
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

/**
 * How a route policy decides for a service (README "Machines"): only an allow rule that names
 * services (`caller = ["service"]`, `client = [...]`) admits one; every fact of a person is
 * unknown for it (a deny on one refuses, as unknown facts do); `client` is the service's own
 * client id, and false for a person.
 */
import { describe, expect, it } from 'vitest';
import { admitsServices, parsePolicy } from '../../../src/config/policy';
import type { AuthUser, ServiceCaller } from '../../../src/env';
import { decide, type RequestFacts } from '../../../src/proxy/policy';

const NOW = 1_800_000_000;

const service: ServiceCaller = { kind: 'service', clientId: 'cli_export', sessionId: 'svc:cli_export:e1', scope: 'reports:read', tokenId: 't1', tokenExpiresAt: NOW + 600 };
const person: AuthUser = {
  id: 'u1',
  email: 'dana@example.com',
  emailVerified: true,
  roles: ['ops'],
  groups: [],
  groupsKnown: true,
  sessionId: 's1',
  tokenId: 't1',
  tokenExpiresAt: NOW + 600,
  issuedAt: NOW,
  amr: ['pwd', 'mfa'],
  authTime: NOW - 100,
};
const facts: RequestFacts = { method: 'GET', segments: ['reports'], ip: '203.0.113.7', country: 'DE', now: NOW };

const verdict = (policy: unknown, who: AuthUser | ServiceCaller = service) => decide(parsePolicy(policy), who, facts);

describe('what admits a service', () => {
  it('caller = "service", or its client id, alone or with request facts', () => {
    expect(verdict({ allow: [{ caller: ['service'] }] })).toEqual({ allowed: true, rule: 'allow[0]' });
    expect(verdict({ allow: [{ client: ['cli_export'] }] })).toEqual({ allowed: true, rule: 'allow[0]' });
    expect(verdict({ allow: [{ caller: ['service'], client: ['cli_other'] }] }).allowed).toBe(false);
    expect(verdict({ allow: [{ caller: ['service'], method: ['GET'], path: ['/reports'] }] }).allowed).toBe(true);
    expect(verdict({ allow: [{ caller: ['service'], method: ['POST'] }] }).allowed).toBe(false);
    expect(verdict({ allow: [{ any: [{ client: ['cli_a'] }, { client: ['cli_export'] }] }] }).allowed).toBe(true);
  });

  it('a rule that does not name services never admits one, however little it asks', () => {
    expect(verdict({ allow: [{ method: ['GET'] }] })).toEqual({ allowed: false, rule: 'no allow matched' });
    expect(verdict({ allow: [{ not: { roles: ['intern'] } }] }).allowed).toBe(false);
    expect(verdict({ allow: [{ any: [{ caller: ['service'] }, { method: ['GET'] }] }] }).allowed).toBe(false);
    expect(verdict({ allow: [{ method: ['GET'] }, { client: ['cli_export'] }] })).toEqual({ allowed: true, rule: 'allow[1]' });
    expect(admitsServices(parsePolicy({ allow: [{ method: ['GET'] }, { roles: ['ops'] }] }))).toBe(false);
    expect(admitsServices(parsePolicy({ allow: [{ method: ['GET'] }, { caller: ['person', 'service'] }] }))).toBe(true);
  });
});

describe('a person\'s facts are unknown for a service', () => {
  it('an allow rule that needs one does not hold; a deny rule on one refuses unless it requires a person', () => {
    for (const fact of [{ email: ['dana@example.com'] }, { domain: ['example.com'] }, { groups: ['eng'] }, { roles: ['ops'] }, { amr: ['mfa'] }, { signed_in_within: 300 }]) {
      expect(verdict({ allow: [{ caller: ['service'], ...fact }] }).allowed, JSON.stringify(fact)).toBe(false);
      expect(verdict({ allow: [{ caller: ['service'], not: fact }] }).allowed, `not ${JSON.stringify(fact)}`).toBe(false);
      expect(verdict({ allow: [{ caller: ['service'] }], deny: [fact] }).allowed, `deny ${JSON.stringify(fact)}`).toBe(false);
      expect(verdict({ allow: [{ caller: ['service'] }], deny: [{ caller: ['person'], ...fact }] }).allowed, `deny person ${JSON.stringify(fact)}`).toBe(true);
    }
  });
});

describe('for a person', () => {
  it('caller = "service" and client are false; rules for people decide as before', () => {
    expect(verdict({ allow: [{ caller: ['service'] }] }, person).allowed).toBe(false);
    expect(verdict({ allow: [{ client: ['cli_export'] }] }, person).allowed).toBe(false);
    expect(verdict({ allow: [{ not: { client: ['cli_export'] }, roles: ['ops'] }] }, person).allowed).toBe(true);
    expect(verdict({ allow: [{ caller: ['service'] }, { roles: ['ops'] }] }, person)).toEqual({ allowed: true, rule: 'allow[1]' });
    expect(verdict({ allow: [{ caller: ['person'] }] }, person).allowed).toBe(true);
  });
});

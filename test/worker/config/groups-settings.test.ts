/**
 * The group settings: GROUPS_MAX_AGE (seconds, default 300, bounded), OIDC_GROUPS_CLAIM (a claim
 * name, default `groups`), and TOKEN_ENCRYPTION_KEY required in production once a route decides
 * on groups (each session keeps its provider grant sealed under it).
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { routesNeedGroups } from '../../../src/config/routes-schema';
import { testKey } from '../support/helpers';

const base = { ENVIRONMENT: 'production', PUBLIC_URL: 'https://gate.example.com', SIGNING_KEYS: JSON.stringify({ keys: [testKey] }) };
const groupRoute = JSON.stringify([{ path: '/eng', origin: 'https://eng.internal.example', auth: 'required', allow: { groups: ['eng'] } }]);
const KEY = 'an-encryption-secret-of-32-characters-or-more';

function parsed(env: Record<string, unknown>) {
  const r = parseConfig(env);
  if (!r.ok) throw new Error(`refused: ${r.error.message}`);
  return r.config;
}

function failure(env: Record<string, unknown>) {
  const r = parseConfig(env);
  if (r.ok) throw new Error('expected the configuration to be refused');
  return r.error;
}

describe('GROUPS_MAX_AGE', () => {
  it('defaults to 300 seconds and takes a whole number of seconds within 30..86400', () => {
    expect(parsed(base).GROUPS_MAX_AGE).toBe(300);
    expect(parsed({ ...base, GROUPS_MAX_AGE: '60' }).GROUPS_MAX_AGE).toBe(60);
    for (const bad of ['ten', '12.5', '0', '29', '86401']) {
      const error = failure({ ...base, GROUPS_MAX_AGE: bad });
      expect(error.setting, bad).toBe('GROUPS_MAX_AGE');
    }
    expect(failure({ ...base, GROUPS_MAX_AGE: 'ten' }).message).toContain('whole number of seconds');
  });
});

describe('OIDC_GROUPS_CLAIM', () => {
  it('defaults to groups; takes a claim name, not arbitrary text', () => {
    expect(parsed(base).OIDC_GROUPS_CLAIM).toBe('groups');
    expect(parsed({ ...base, OIDC_GROUPS_CLAIM: 'https://example.com/claims/groups' }).OIDC_GROUPS_CLAIM).toBe('https://example.com/claims/groups');
    expect(failure({ ...base, OIDC_GROUPS_CLAIM: 'two words' }).setting).toBe('OIDC_GROUPS_CLAIM');
  });
});

describe('a route that decides on groups', () => {
  it('needs TOKEN_ENCRYPTION_KEY in production, named as the setting at fault', () => {
    const error = failure({ ...base, ROUTES: groupRoute });
    expect(error.setting).toBe('TOKEN_ENCRYPTION_KEY');
    expect(error.message).toContain('a route decides on groups');
    expect(parsed({ ...base, ROUTES: groupRoute, TOKEN_ENCRYPTION_KEY: KEY }).groupsNeeded).toBe(true);
    // Development demonstrates it without one.
    expect(parsed({ ENVIRONMENT: 'development', ROUTES: groupRoute }).groupsNeeded).toBe(true);
  });

  it('is any route whose allow or policy names groups, at any depth; an empty list names none', () => {
    expect(parsed(base).groupsNeeded).toBe(false);
    const rolesOnly = JSON.stringify([{ path: '/ops', origin: 'https://ops.internal.example', auth: 'required', allow: { roles: ['ops'], groups: [] } }]);
    expect(parsed({ ...base, ROUTES: rolesOnly }).groupsNeeded).toBe(false);
    // A rule language that nests conditions (`policy`) is read generically.
    expect(routesNeedGroups([{ path: '/x', policy: { allow: [{ any: [{ email: ['a@example.com'] }, { groups: ['eng'] }] }] } }])).toBe(true);
    expect(routesNeedGroups([{ path: '/x', policy: { deny: [{ not: { groups: ['contractors'] } }] } }])).toBe(true);
    expect(routesNeedGroups([{ path: '/x', policy: { allow: [{ email: ['a@example.com'], method: ['GET'] }] } }])).toBe(false);
    // `groups` elsewhere in a route (not a condition) is not a group rule.
    expect(routesNeedGroups([{ path: '/groups', origin: 'https://groups.internal.example', auth: 'required' }])).toBe(false);
  });
});

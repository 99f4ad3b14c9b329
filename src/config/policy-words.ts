/**
 * A route's rules in plain words, for people (the console's Routes and policy area): the
 * compiled {@link Policy} the gate evaluates (config/policy.ts), read back, so the words say what
 * is decided, not what was written. Nothing here decides anything.
 */
import type { IpRange } from '../util/ip';
import { isDirectoryGroupName, type Condition, type Policy, type Rule } from './policy';
import type { RouteConfig } from './routes-schema';

/** RFC 8176 methods as people know them; others by their code. */
const METHODS_OF_SIGN_IN: Record<string, string> = {
  mfa: 'a second factor',
  hwk: 'a passkey (hardware key)',
  swk: 'a passkey (software key)',
  pwd: 'a password',
  otp: 'a one-time code',
};

const or = (values: readonly string[]) => (values.length <= 1 ? (values[0] ?? '') : `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`);
const quoted = (values: readonly string[]) => or(values.map((v) => `“${v}”`));

/** "15 minutes", "1 hour", "90 seconds". */
export function duration(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} day${seconds === 86_400 ? '' : 's'}`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`;
  if (seconds % 60 === 0) return `${seconds / 60} minute${seconds === 60 ? '' : 's'}`;
  return `${seconds} second${seconds === 1 ? '' : 's'}`;
}

/** A CIDR range as text again (IPv6 without `::` shortening: unambiguous is enough here). */
function rangeText(r: IpRange): string {
  if (r.v4) return `${[...r.bytes].join('.')}/${r.bits}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((r.bytes[i]! << 8) | r.bytes[i + 1]!).toString(16));
  return `${groups.join(':')}/${r.bits}`;
}

function groupNames(values: readonly string[]): string {
  return or(values.map((g) => (isDirectoryGroupName(g) ? `the directory’s group “${g.slice(5)}”` : `the provider group “${g}”`)));
}

/** What a condition asks of a request, as a phrase that completes "someone who …". */
export function conditionWords(c: Condition): string {
  switch (c.kind) {
    case 'all':
      return c.of.map(conditionWords).join(' and ');
    case 'any':
      return `either ${c.of.map((part) => `(${conditionWords(part)})`).join(' or ')}`;
    case 'not':
      return `does not meet (${conditionWords(c.of)})`;
    case 'email':
      return `signs in as ${or([...c.values])} (a verified address)`;
    case 'domain':
      return `has a verified address at ${or([...c.values])}`;
    case 'groups':
      return `is in ${groupNames(c.values)}`;
    case 'roles':
      return `holds the role ${quoted(c.values)}`;
    case 'amr':
      return `signed in with ${or(c.values.map((m) => METHODS_OF_SIGN_IN[m] ?? `“${m}”`))}`;
    case 'signed_in_within':
      return `signed in within the last ${duration(c.seconds)}`;
    case 'method':
      return `uses the method ${or([...c.values])}`;
    case 'country':
      return `comes from the country ${or([...c.values])}`;
    case 'ip':
      return `comes from the addresses ${or(c.ranges.map(rangeText))}`;
    case 'path':
      return `asks for a path below the route matching ${or(c.globs.map((g) => `/${g.join('/')}`))}`;
    case 'caller':
      return `is ${or(c.values.map((k) => (k === 'service' ? 'a service (a machine with its own token)' : 'a person')))}`;
    case 'client':
      return `is the app or service ${or([...c.values])}`;
  }
}

/** One rule in words: "Admits someone who …" or "Refuses someone who …". */
export function ruleWords(rule: Rule, kind: 'allow' | 'deny'): string {
  return `${kind === 'allow' ? 'Admits' : 'Refuses'} someone who ${conditionWords(rule.condition)}.`;
}

/** The rule of `policy` with this label (`allow[1]`, `deny[0]`, `allow.roles`), in words; null if none has it. */
export function labelledRuleWords(policy: Policy, label: string): string | null {
  const deny = policy.deny.find((r) => r.label === label);
  if (deny) return ruleWords(deny, 'deny');
  const allow = policy.allow.find((r) => r.label === label);
  return allow ? ruleWords(allow, 'allow') : null;
}

/** Who the route lets through, in one sentence (its rules, if any, come after). */
export function admitsWords(route: Pick<RouteConfig, 'auth'>, policy: Policy | null): string {
  if (route.auth === 'public') return 'Everyone, signed in or not: no one is checked.';
  if (route.auth === 'optional') return 'Everyone; a signed-in user’s identity is passed on to the origin.';
  if (policy === null) return 'Any signed-in user.';
  return policy.deny.length
    ? 'Signed-in users admitted by one of the rules below and refused by none (a refusal wins).'
    : 'Signed-in users admitted by one of the rules below.';
}

/** What a route asks beyond its rules: step-up, in words; null if nothing. */
export function stepUpWords(route: Pick<RouteConfig, 'require' | 'max_auth_age'>): string | null {
  const parts: string[] = [];
  if (route.require?.length) parts.push(`a sign-in with ${or(route.require.map((r) => (r === 'mfa' ? 'a second factor' : 'a passkey')))}${route.require.length > 1 ? ' (each of them)' : ''}`);
  if (route.max_auth_age !== undefined) parts.push(`a sign-in no older than ${duration(route.max_auth_age)}`);
  return parts.length ? `Also needs ${parts.join(' and ')}; otherwise the user is asked to step up.` : null;
}

/**
 * Optional breached-password check at registration (`BREACHED_PASSWORD_CHECK`): the Pwned
 * Passwords range API, with k-anonymity. Only the first 5 hex characters of the password's
 * SHA-1 leave the Worker; the answer lists every hash suffix with that prefix, padded with
 * zero-count decoys (`Add-Padding: true`) so that its size tells an observer nothing either.
 * `required` refuses the registration when the service cannot answer (503, fail closed);
 * `best-effort` lets it through with a log line.
 */
import { badRequest, unavailable } from '../http/errors';
import { log } from '../observability/log';

export type BreachedPasswordCheck = 'off' | 'required' | 'best-effort';

const RANGE_API = 'https://api.pwnedpasswords.com/range/';
const TIMEOUT_MS = 3000;

type Verdict = 'breached' | 'not_found' | { unavailable: string };

async function lookUp(password: string): Promise<Verdict> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-1', new TextEncoder().encode(password)));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();
  const [prefix, suffix] = [hex.slice(0, 5), hex.slice(5)];
  let body: string;
  try {
    const response = await fetch(`${RANGE_API}${prefix}`, { headers: { 'add-padding': 'true' }, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (!response.ok) return { unavailable: `status ${response.status}` }; // a redirect too: not followed
    body = await response.text();
  } catch (e) {
    return { unavailable: e instanceof Error ? e.name : 'fetch failed' };
  }
  let entries = 0;
  for (const line of body.split('\n')) {
    const match = /^([0-9A-F]{35}):(\d+)\s*$/i.exec(line);
    if (!match) continue;
    entries++;
    // Padding entries carry a count of 0: they are decoys, not breaches.
    if (match[1]!.toUpperCase() === suffix && Number(match[2]) > 0) return 'breached';
  }
  // A real answer always lists many suffixes: anything else is not an answer.
  return entries > 0 ? 'not_found' : { unavailable: 'not a range answer' };
}

/** Throws 400 for a password known from breaches; 503 if unknown and the check is required. */
export async function assertNotBreached(password: string, mode: BreachedPasswordCheck): Promise<void> {
  if (mode === 'off') return;
  const verdict = await lookUp(password);
  if (verdict === 'breached') {
    throw badRequest('This password has appeared in a data breach, so attackers try it early. Choose another one.');
  }
  if (verdict === 'not_found') return;
  if (mode === 'required') {
    log.error('breached_password_check_failed', { outcome: 'refused', reason: verdict.unavailable });
    throw unavailable('The breached-password check is unavailable. Try again shortly.');
  }
  log.warn('breached_password_check_failed', { outcome: 'allowed', reason: verdict.unavailable });
}

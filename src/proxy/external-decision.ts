/**
 * A route's external decision (`policy.external = "service:NAME"`, README "Policy"): after the
 * route's own rules allow, a Worker bound as NAME is asked, by a JSON POST to
 * `https://gatehouse.invalid/decision`:
 *
 *   { "version": 1, "route": "/app",
 *     "request": { "method": "GET", "host": "...", "path": "/app/x", "ip": "...", "country": "DE" },
 *     "identity": { "caller": "person", "sub": "...", "email": "...", "email_verified": true,
 *                   "roles": [...], "groups": [...], "groups_known": true, "amr": [...], "auth_time": 0,
 *                   "session_id": "..." } }
 *
 * At a protected resource (README "MCP servers") the person's identity also has `client_id`, the
 * OAuth client acting for them. A service (README "Machines") is sent as
 * `{ "caller": "service", "sub": "<client id>", "client_id": "...", "scope": "...", "session_id": "svc:..." }`.
 *
 * (`path` without the query; `host`, `ip` and `country` null, `method` empty, where unknown;
 * `groups_known` false when no provider vouches for the groups, which are then empty but
 * unknown, not "none".) It answers 200 with
 * `{ "allow": true | false, "reason"?: "..." }`. Anything else (another status, a body that is
 * not that JSON or longer than {@link EXTERNAL_ANSWER_MAX_BYTES}, no answer within
 * {@link EXTERNAL_TIMEOUT_MS}, no such binding) is a refusal:
 * the requester gets 403 `forbidden`, the log says why. The reason is logged, never shown.
 *
 * Answers (allow or refuse, not failures) are kept for {@link EXTERNAL_CACHE_SECONDS} per access
 * token (so per session, and new at each refresh), route, method, path, IP and country, at most
 * {@link EXTERNAL_CACHE_ENTRIES} per isolate (the oldest goes first).
 */
import { cappedText } from '../util/capped-text';
import { serviceBinding, type AuthUser, type Env, type ServiceCaller } from '../env';
import { log } from '../observability/log';
import { isService, type Principal } from './policy';

export const EXTERNAL_TIMEOUT_MS = 2000;
export const EXTERNAL_CACHE_SECONDS = 5;
export const EXTERNAL_CACHE_ENTRIES = 1000;
export const EXTERNAL_DECISION_URL = 'https://gatehouse.invalid/decision';
/** The longest answer read: `{"allow": …, "reason": …}` needs far less. */
export const EXTERNAL_ANSWER_MAX_BYTES = 16 * 1024;

export interface ExternalRequest {
  method: string;
  host: string | null;
  path: string;
  ip: string | null;
  country: string | null;
}

export interface ExternalVerdict {
  allowed: boolean;
  /** Asking failed (a refusal, never cached). */
  failed: boolean;
  /** What the log says: the service's reason (may be empty), or why asking failed. */
  why: string;
}

const answers = new Map<string, ExternalVerdict & { until: number }>();

function remember(key: string, verdict: ExternalVerdict, nowMs: number): void {
  answers.delete(key);
  // A Map iterates in insertion order: the first key is the oldest.
  while (answers.size >= EXTERNAL_CACHE_ENTRIES) answers.delete(answers.keys().next().value!);
  answers.set(key, { ...verdict, until: nowMs + EXTERNAL_CACHE_SECONDS * 1000 });
}

/** How many answers this isolate holds (for tests of the bound). */
export function cachedExternalAnswers(): number {
  return answers.size;
}

const failure = (why: string): ExternalVerdict => ({ allowed: false, failed: true, why });

function isAnswer(x: unknown): x is { allow: boolean; reason?: unknown } {
  return typeof x === 'object' && x !== null && 'allow' in x && typeof x.allow === 'boolean';
}

/** What the service is told of a service caller: its client, no person. */
function serviceIdentity(caller: ServiceCaller) {
  return { caller: 'service', sub: caller.clientId, client_id: caller.clientId, scope: caller.scope, session_id: caller.sessionId };
}

/** What the service is told of a signed-in person. */
function personIdentity(user: AuthUser) {
  return {
    caller: 'person',
    sub: user.id,
    email: user.email,
    email_verified: user.emailVerified,
    roles: user.roles,
    groups: user.groups,
    // False: no provider vouches for `groups` (a password sign-in, groups too old); they may be in some.
    groups_known: user.groupsKnown,
    // True: the directory (SCIM) vouches for the `scim:` names in `groups` (even none).
    scim_groups_known: user.scimGroupsKnown === true,
    amr: user.amr,
    auth_time: user.authTime,
    session_id: user.sessionId,
    // At a protected resource an OAuth client acts for the user: which one is the service's to judge too.
    ...(user.clientId === undefined ? {} : { client_id: user.clientId }),
  };
}

async function ask(env: Env, binding: string, route: string, principal: Principal, request: ExternalRequest): Promise<ExternalVerdict> {
  const service = serviceBinding(env, binding);
  if (!service) return failure('no such service binding');
  const body = JSON.stringify({
    version: 1,
    route,
    request,
    identity: isService(principal) ? serviceIdentity(principal) : personIdentity(principal),
  });
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // The signal asks the service to stop; the race stops the wait even when it does not, or when
  // it sends its headers and then stalls the body.
  const deadline = new Promise<ExternalVerdict>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve(failure(`no answer within ${EXTERNAL_TIMEOUT_MS} ms`));
    }, EXTERNAL_TIMEOUT_MS);
  });
  try {
    return await Promise.race([exchange(service, body, controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The answer's text, or null past {@link EXTERNAL_ANSWER_MAX_BYTES}. Stops reading (cancels the
 * body) there and when the deadline aborts, so an endless or stalled body is not read on in the
 * background after the request has been refused.
 */
function readAnswer(response: Response, signal: AbortSignal): Promise<string | null> {
  return cappedText(response.body, EXTERNAL_ANSWER_MAX_BYTES, { signal });
}

/** One POST to the service and its answer read; never rejects. */
async function exchange(service: Pick<Fetcher, 'fetch'>, body: string, signal: AbortSignal): Promise<ExternalVerdict> {
  try {
    const response = await service.fetch(EXTERNAL_DECISION_URL, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal,
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      return failure(`status ${response.status}`);
    }
    const text = await readAnswer(response, signal);
    if (text === null) return failure(`the answer is too long (over ${EXTERNAL_ANSWER_MAX_BYTES} bytes)`);
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      return failure(signal.aborted ? `no answer within ${EXTERNAL_TIMEOUT_MS} ms` : 'the answer is not JSON');
    }
    if (!isAnswer(answer)) return failure('the answer has no boolean "allow"');
    const reason = typeof answer.reason === 'string' ? answer.reason.slice(0, 200) : '';
    return { allowed: answer.allow, failed: false, why: reason };
  } catch (e) {
    return failure(signal.aborted ? `no answer within ${EXTERNAL_TIMEOUT_MS} ms` : `${e instanceof Error ? e.name : 'error'}`);
  }
}

/** The external service's verdict on this request, from the cache while it is fresh. */
export async function externalDecision(env: Env, binding: string, route: string, user: Principal, request: ExternalRequest): Promise<ExternalVerdict> {
  const key = `${user.tokenId}\n${binding}\n${route}\n${request.method}\n${request.host ?? ''}\n${request.path}\n${request.ip ?? ''}\n${request.country ?? ''}`;
  const nowMs = Date.now();
  const cached = answers.get(key);
  if (cached && cached.until > nowMs) return cached;
  const verdict = await ask(env, binding, route, user, request);
  if (verdict.failed) {
    answers.delete(key);
    log.warn('policy_external_failed', { route, binding, why: verdict.why });
  } else {
    remember(key, verdict, nowMs);
  }
  return verdict;
}

/**
 * Logout notices to origins (README "Revocation"): the `LOGOUT_NOTICES` queue's consumer. Each
 * message is one ended gateway session owed to one route's `logout_notify` target (the user's
 * sessions object wrote it in the transaction that ended the session and its alarm queued it,
 * storage/logout-notices.ts). Here: a logout token in the format of OpenID Connect Back-Channel
 * Logout (tokens/logout-token.ts: `typ: logout+jwt`, `aud` the target itself, `sid` the
 * session the origin's assertions carried), POSTed form-encoded under a deadline, no redirect
 * followed; 200 or 204 is done, anything else is tried again after a growing delay
 * (`message.retry`), then given up. Every outcome is audited. Nothing here runs on a request:
 * a dead origin never delays a sign-out.
 *
 * The consumer's env is the Worker's own, so config and keys load as for a request: once per
 * isolate. Messages the queue itself gave up on (the consumer failed too often) arrive from the
 * dead-letter queue and are audited as abandoned.
 */
import * as v from 'valibot';
import { loadConfig } from '../config/load';
import { logoutNoticeTargets, serviceTarget } from '../config/routes-schema';
import type { Config } from '../config/schema';
import { serviceBinding, type Env } from '../env';
import { getKeyring } from '../keys/keyring';
import { log } from '../observability/log';
import type { LogoutNotice } from '../storage/user-sessions';
import { issueLogoutToken } from '../tokens/logout-token';
import { recordEventOffRequest } from './events';

/** The queues (wrangler.toml): notices, and where the queue puts those its consumer kept failing on. */
export const NOTICE_QUEUE = 'gatehouse-logout-notices';
export const NOTICE_DEAD_LETTER_QUEUE = 'gatehouse-logout-notices-dead';

/** How long an origin may take to answer (connect, send, status line). */
export const NOTICE_DEADLINE_MS = 5_000;

/**
 * Seconds between a failed try and the next: five retries over about 2 h 32 min, then the
 * notice is given up (wrangler.toml's `max_retries` is above this, so the consumer, not the
 * queue, decides and audits). Each at most the queue's 12 hours.
 */
export const NOTICE_RETRY_S = [10, 60, 300, 1800, 7200] as const;

const noticeSchema = v.object({
  sub: v.string(),
  sid: v.string(),
  target: v.string(),
  route: v.string(),
});

/** An origin's answer, or what came instead: no answer in time, no connection, no such binding, or a fault of the gateway's own (config, keys). */
type Status = number | 'timeout' | 'unreachable' | 'no_binding' | 'gateway_error';

/** Handles a batch from either queue; every message is acked or retried here, never left to the batch. */
export async function deliverLogoutNotices(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  await Promise.all(batch.messages.map((message) => (batch.queue === NOTICE_DEAD_LETTER_QUEUE ? deadLetter(message, env) : deliverOne(message, env))));
}

async function deadLetter(message: Message<unknown>, env: Env): Promise<void> {
  const parsed = v.safeParse(noticeSchema, message.body);
  if (parsed.success) {
    const n = parsed.output;
    await recordEventOffRequest(env.DB, { event: 'logout_notice_abandoned', outcome: 'failure', userId: n.sub, detail: { route: n.route, sid: n.sid, attempt: message.attempts, reason: 'dead_letter' } });
  } else {
    log.error('logout_notice_malformed', { queue: NOTICE_DEAD_LETTER_QUEUE, id: message.id });
  }
  message.ack();
}

async function deliverOne(message: Message<unknown>, env: Env): Promise<void> {
  const parsed = v.safeParse(noticeSchema, message.body);
  if (!parsed.success) {
    // Only the sessions objects write here: a body of another shape is no notice at all.
    log.error('logout_notice_malformed', { queue: NOTICE_QUEUE, id: message.id });
    message.ack();
    return;
  }
  const notice: LogoutNotice = parsed.output;
  const attempt = message.attempts;
  const detail = { route: notice.route, sid: notice.sid, attempt };
  const retryInS = NOTICE_RETRY_S[attempt - 1] ?? null;
  if (attempt > NOTICE_RETRY_S.length + 1) {
    // Delivered again after the consumer itself failed (the queue's own retries): past the last try.
    await recordEventOffRequest(env.DB, { event: 'logout_notice_abandoned', outcome: 'failure', userId: notice.sub, detail: { ...detail, reason: 'attempts' } });
    message.ack();
    return;
  }
  let status: Status;
  try {
    const loaded = loadConfig(env);
    if (!loaded.ok) throw loaded.error;
    const config = loaded.config;
    if (!logoutNoticeTargets(config.ROUTES).some((t) => t.target === notice.target)) {
      // Only a target ROUTES names now: one removed since the notice was owed (a retired
      // host, perhaps no longer the operator's) is told nothing, and no message, whoever put it
      // on the queue, makes the gateway sign and send a token anywhere else.
      await recordEventOffRequest(env.DB, { event: 'logout_notice_abandoned', outcome: 'failure', userId: notice.sub, detail: { ...detail, reason: 'target_not_allowed' } });
      message.ack();
      return;
    }
    const { token } = await issueLogoutToken(await getKeyring(config), { issuer: config.PUBLIC_URL, audience: notice.target, subject: notice.sub, sessionId: notice.sid });
    status = await send(env, config, notice.target, token);
  } catch (e) {
    // The gateway's own fault (config, keys): a failed try, tried again like any other.
    log.error('logout_notice_error', { ...detail, error: e instanceof Error ? e.message : String(e) });
    status = 'gateway_error';
  }
  if (status === 200 || status === 204) {
    await recordEventOffRequest(env.DB, { event: 'logout_notice_delivered', outcome: 'success', userId: notice.sub, detail: { ...detail, status } });
    message.ack();
    return;
  }
  if (retryInS === null) {
    await recordEventOffRequest(env.DB, { event: 'logout_notice_abandoned', outcome: 'failure', userId: notice.sub, detail: { ...detail, status } });
    message.ack();
    return;
  }
  await recordEventOffRequest(env.DB, { event: 'logout_notice_failed', outcome: 'failure', userId: notice.sub, detail: { ...detail, status, retry_in_s: retryInS } });
  message.retry({ delaySeconds: retryInS });
}

/**
 * POSTs the token (form-encoded, as OpenID Connect Back-Channel Logout does), under the deadline,
 * never following a redirect. A `service:` target gets it through its binding, at its path on the
 * gateway's host. Returns the status, or what went wrong instead. The body is never read.
 */
async function send(env: Env, config: Config, target: string, token: string): Promise<Status> {
  const service = serviceTarget(target);
  const binding = service ? serviceBinding(env, service.binding) : null;
  if (service && !binding) return 'no_binding';
  const init: RequestInit = {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'cache-control': 'no-store' },
    body: new URLSearchParams({ logout_token: token }).toString(),
    redirect: 'manual',
    signal: AbortSignal.timeout(NOTICE_DEADLINE_MS),
  };
  try {
    const response = service && binding ? await binding.fetch(`${new URL(config.PUBLIC_URL).origin}${service.path}`, init) : await fetch(target, init);
    await response.body?.cancel();
    return response.status;
  } catch (e) {
    return e instanceof DOMException && (e.name === 'TimeoutError' || e.name === 'AbortError') ? 'timeout' : 'unreachable';
  }
}

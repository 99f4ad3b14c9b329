/**
 * Back-channel logout to relying parties (OpenID Connect Back-Channel Logout 1.0): one try at
 * telling a client that a session it held a grant on has ended. The user's object
 * (storage/user-sessions.ts) keeps what is owed in its outbox, written in the transaction that
 * ended the session, and calls this from its alarm, so no relying party ever delays a sign-out;
 * it decides what is due and when to retry (`LOGOUT_RETRY_S`). Here: the client as it stands
 * now (read from D1 at every try), the signed logout token, the POST, and the audit.
 *
 * The object's env is the Worker's own (the same Worker), so the config and the keys are
 * loaded here as for a request: once per isolate.
 */
import { loadConfig } from '../config/load';
import { logoutUriAllowed } from '../config/routes-schema';
import type { Config } from '../config/schema';
import type { Env } from '../env';
import { getKeyring } from '../keys/keyring';
import { log } from '../observability/log';
import { findClientById, type OAuthClient } from '../storage/oauth-clients';
import type { LogoutDelivery, LogoutOutcome } from '../storage/user-sessions';
import { issueLogoutToken } from '../tokens/logout-token';
import { recordEventOffRequest } from './events';

/** How long one client may take to answer (connect, send, status line). */
export const LOGOUT_DEADLINE_MS = 5_000;

/** The rule for where logout tokens go (config/routes-schema.ts): apps' URIs and origins' notice targets alike. */
export { logoutUriAllowed };

/** Why a client gets nothing (any more): it is gone, disabled, or its URI is not one we send to. */
function dropReason(client: OAuthClient | null, config: Config): string | null {
  if (client === null) return 'client_unknown';
  if (client.disabledAt !== null) return 'client_disabled';
  if (client.backchannelLogoutUri === null) return 'no_uri';
  if (!logoutUriAllowed(client.backchannelLogoutUri, config)) return 'uri_not_allowed';
  return null;
}

/** One try at delivering a logout token; the outcome audited. Throws only when the gateway itself cannot (config, keys, D1): a failed try. */
export async function deliverLogout(env: Env, item: LogoutDelivery): Promise<LogoutOutcome> {
  const loaded = loadConfig(env);
  if (!loaded.ok) throw loaded.error;
  const config = loaded.config;
  const client = await findClientById(env.DB, item.clientId);
  const detail = { client_id: item.clientId, sid: item.sessionId, attempt: item.attempt };
  const dropped = dropReason(client, config);
  if (dropped === 'no_uri') {
    // The client never asked to be told, or no longer does: nothing to send, nothing to audit.
    log.info('backchannel_logout_not_wanted', detail);
    return 'dropped';
  }
  if (dropped !== null || client === null || client.backchannelLogoutUri === null) {
    await recordEventOffRequest(env.DB, { event: 'backchannel_logout_dropped', outcome: 'failure', userId: item.userId, detail: { ...detail, reason: dropped } });
    return 'dropped';
  }
  const { token } = await issueLogoutToken(await getKeyring(config), { issuer: config.PUBLIC_URL, audience: client.id, subject: item.userId, sessionId: item.sessionId });
  const status = await send(client.backchannelLogoutUri, token);
  if (status === 200 || status === 204) {
    await recordEventOffRequest(env.DB, { event: 'backchannel_logout_delivered', outcome: 'success', userId: item.userId, detail: { ...detail, status } });
    return 'delivered';
  }
  const event = item.retryInS === null ? 'backchannel_logout_abandoned' : 'backchannel_logout_failed';
  const retry = item.retryInS === null ? {} : { retry_in_s: item.retryInS };
  await recordEventOffRequest(env.DB, { event, outcome: 'failure', userId: item.userId, detail: { ...detail, status, ...retry } });
  return 'failed';
}

/**
 * POSTs the token (form-encoded, as the specification says), under the deadline, never
 * following a redirect (a 3xx is a failure like any other answer than 200 or 204). Returns the
 * status, or what went wrong instead: `timeout` or `unreachable`. The body is never read.
 */
async function send(uri: string, token: string): Promise<number | 'timeout' | 'unreachable'> {
  try {
    const response = await fetch(uri, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'cache-control': 'no-store' },
      body: new URLSearchParams({ logout_token: token }).toString(),
      redirect: 'manual',
      signal: AbortSignal.timeout(LOGOUT_DEADLINE_MS),
    });
    await response.body?.cancel();
    return response.status;
  } catch (e) {
    return e instanceof DOMException && (e.name === 'TimeoutError' || e.name === 'AbortError') ? 'timeout' : 'unreachable';
  }
}

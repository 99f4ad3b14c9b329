/**
 * Outbound calls to providers: every one runs under a deadline, and every failure becomes a
 * {@link ProviderError} (down or slow: `unavailable`; an answer we cannot use: `bad_response`).
 *
 * The deadline is one AbortSignal for a whole operation (a callback: discovery, token, key set,
 * userinfo or API calls together), not one per call: with a timeout per call, a provider that
 * is slow at every step would hold a callback for several times the documented 5 seconds.
 */
import * as v from 'valibot';
import { ProviderError } from './types';
import { cappedText } from '../util/capped-text';

/** How long one provider operation (a whole callback, a sign-in start, a renewal) may take. */
export const PROVIDER_DEADLINE_MS = 5_000;

/** A fresh deadline for one provider operation. */
export const newDeadline = (ms = PROVIDER_DEADLINE_MS): AbortSignal => AbortSignal.timeout(ms);

/** Provider answers are small JSON documents; anything bigger (in bytes) is not one we want to read. */
export const MAX_RESPONSE_BYTES = 256 * 1024;

export const USER_AGENT = 'Gatehouse';

const timedOut = (what: string) => new ProviderError('unavailable', `${what} did not answer in time.`, 'timeout', 'deadline');

function isTimeout(e: unknown): boolean {
  return e instanceof DOMException && (e.name === 'TimeoutError' || e.name === 'AbortError');
}

/**
 * Runs `work` until `deadline` aborts. Used where a library makes the request itself and takes
 * no AbortSignal (jose's key set fetch): the promise is abandoned, not the socket, which the
 * runtime reclaims when the request ends.
 */
export async function withDeadline<T>(work: Promise<T>, what: string, deadline: AbortSignal): Promise<T> {
  if (deadline.aborted) throw timedOut(what);
  let onAbort = () => {};
  const expired = new Promise<never>((_, reject) => {
    onAbort = () => reject(timedOut(what));
    deadline.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    deadline.removeEventListener('abort', onAbort);
  }
}

/** Sends a request under the deadline, never following redirects. */
async function send(url: string, init: RequestInit, what: string, deadline: AbortSignal): Promise<Response> {
  if (deadline.aborted) throw timedOut(what);
  try {
    return await fetch(url, { ...init, redirect: 'manual', signal: deadline });
  } catch (e) {
    if (isTimeout(e)) throw timedOut(what);
    throw new ProviderError('unavailable', `${what} could not be reached.`, String(e));
  }
}

const tooMuch = (what: string) => new ProviderError('bad_response', `${what} answered with too much data.`);

/**
 * The body as text, read chunk by chunk under the deadline and given up (the rest never read)
 * once past {@link MAX_RESPONSE_BYTES}: reading it whole first would hold whatever a provider
 * sends, up to the isolate's memory, on the refresh path too.
 */
async function readCapped(response: Response, what: string, deadline: AbortSignal): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > MAX_RESPONSE_BYTES) {
    await response.body?.cancel();
    throw tooMuch(what);
  }
  const text = await cappedText(response.body, MAX_RESPONSE_BYTES, { each: (read) => withDeadline(read, what, deadline) });
  if (text === null) throw tooMuch(what);
  return text;
}

/** Reads a JSON body (size-capped, under the deadline); throws `bad_response` for anything else. */
async function readJson(response: Response, what: string, deadline: AbortSignal): Promise<unknown> {
  let text: string;
  try {
    text = await readCapped(response, what, deadline);
  } catch (e) {
    if (e instanceof ProviderError) throw e;
    throw new ProviderError('unavailable', `${what} could not be read.`, String(e));
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ProviderError('bad_response', `${what} did not answer with JSON.`);
  }
}

/** GETs a JSON document and validates it. `bearer` is sent as `Authorization: Bearer`. */
export async function fetchJson<S extends v.GenericSchema>(
  url: string,
  schema: S,
  what: string,
  opts: { deadline: AbortSignal; bearer?: string; accept?: string },
): Promise<v.InferOutput<S>> {
  const headers: Record<string, string> = { accept: opts.accept ?? 'application/json', 'user-agent': USER_AGENT };
  if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
  const response = await send(url, { headers }, what, opts.deadline);
  // GitHub answers an exhausted rate limit with 403 and `x-ratelimit-remaining: 0`: a busy provider, not a refusal.
  if (response.status >= 500 || response.status === 429 || (response.status === 403 && response.headers.get('x-ratelimit-remaining') === '0')) {
    await response.body?.cancel();
    throw new ProviderError('unavailable', `${what} is unavailable.`, `status ${response.status}`);
  }
  if (response.status === 401 || response.status === 403) {
    await response.body?.cancel();
    throw new ProviderError('refused', `${what} refused the request.`, `status ${response.status}`);
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new ProviderError('bad_response', `${what} gave an unexpected answer.`, `status ${response.status}`);
  }
  const data = await readJson(response, what, opts.deadline);
  const parsed = v.safeParse(schema, data);
  if (!parsed.success) {
    throw new ProviderError('bad_response', `${what} answered with an unexpected document.`, parsed.issues[0]?.message);
  }
  return parsed.output;
}

/**
 * POSTs a form to a token endpoint (RFC 6749 section 3.2) and returns the status and JSON body.
 * A redirect is a fault, never followed: following a 307 would resend the code, the PKCE
 * verifier and the client secret to wherever the redirect points.
 */
export async function postTokenRequest(
  url: string,
  form: URLSearchParams,
  basicAuth: string | null,
  deadline: AbortSignal,
): Promise<{ status: number; data: unknown }> {
  const what = 'The provider’s token endpoint';
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
    'user-agent': USER_AGENT,
  };
  if (basicAuth !== null) headers.authorization = `Basic ${basicAuth}`;
  const response = await send(url, { method: 'POST', headers, body: form.toString() }, what, deadline);
  if (response.status >= 300 && response.status < 400) {
    await response.body?.cancel();
    throw new ProviderError('bad_response', `${what} answered with a redirect.`, `status ${response.status}`, 'token_redirect');
  }
  if (response.status >= 500 || response.status === 429) {
    await response.body?.cancel();
    throw new ProviderError('unavailable', 'The provider is unavailable.', `status ${response.status}`);
  }
  if (response.status !== 200 && response.status !== 400 && response.status !== 401) {
    await response.body?.cancel();
    throw new ProviderError('bad_response', 'The provider gave an unexpected answer.', `status ${response.status}`);
  }
  return { status: response.status, data: await readJson(response, what, deadline) };
}

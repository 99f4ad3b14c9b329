/**
 * Outbound calls to providers: every one has a deadline, and every failure becomes a
 * {@link ProviderError} (down or slow: `unavailable`; an answer we cannot use: `bad_response`).
 */
import * as v from 'valibot';
import { ProviderError } from './types';

/** How long any single provider call may take before the sign-in fails with 503. */
export const PROVIDER_TIMEOUT_MS = 5_000;

/** Provider answers are small JSON documents; anything bigger is not one we want to parse. */
const MAX_RESPONSE_BYTES = 256 * 1024;

export const USER_AGENT = 'Gatehouse';

function isTimeout(e: unknown): boolean {
  return e instanceof DOMException && (e.name === 'TimeoutError' || e.name === 'AbortError');
}

/**
 * Runs `work` with a deadline. Used where a library makes the request itself and takes no
 * AbortSignal (arctic's token endpoint calls): the promise is abandoned, not the socket, which
 * the runtime reclaims when the request ends.
 */
export async function withDeadline<T>(work: Promise<T>, what: string, ms = PROVIDER_TIMEOUT_MS): Promise<T> {
  const signal = AbortSignal.timeout(ms);
  const timedOut = new Promise<never>((_, reject) => {
    signal.addEventListener('abort', () => reject(new ProviderError('unavailable', `${what} did not answer in time.`, 'timeout')), { once: true });
  });
  return Promise.race([work, timedOut]);
}

/** GETs a JSON document and validates it. `bearer` is sent as `Authorization: Bearer`. */
export async function fetchJson<S extends v.GenericSchema>(
  url: string,
  schema: S,
  what: string,
  opts: { bearer?: string; accept?: string } = {},
): Promise<v.InferOutput<S>> {
  const headers: Record<string, string> = { accept: opts.accept ?? 'application/json', 'user-agent': USER_AGENT };
  if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
  let response: Response;
  try {
    response = await fetch(url, { headers, redirect: 'manual', signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS) });
  } catch (e) {
    throw new ProviderError('unavailable', `${what} could not be reached.`, isTimeout(e) ? 'timeout' : String(e));
  }
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
  let text: string;
  try {
    text = await withDeadline(response.text(), what);
  } catch (e) {
    if (e instanceof ProviderError) throw e;
    throw new ProviderError('unavailable', `${what} could not be read.`, String(e));
  }
  if (text.length > MAX_RESPONSE_BYTES) throw new ProviderError('bad_response', `${what} answered with too much data.`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new ProviderError('bad_response', `${what} did not answer with JSON.`);
  }
  const parsed = v.safeParse(schema, data);
  if (!parsed.success) {
    throw new ProviderError('bad_response', `${what} answered with an unexpected document.`, parsed.issues[0]?.message);
  }
  return parsed.output;
}

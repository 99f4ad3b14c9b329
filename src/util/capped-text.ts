/**
 * A body as text, read chunk by chunk and given up once past `maxBytes`: the rest is never read
 * (the body is cancelled), so an answer of any size holds at most that much memory. Reading it
 * whole first (`response.text()`) would hold whatever the other side sends.
 *
 * `signal` cancels the body when it aborts (a deadline: a stalled body is not read on after
 * the caller has given up); `each` wraps every read (a deadline that rejects). Null when the
 * body is longer than `maxBytes`.
 */
export async function cappedText(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
  options: { signal?: AbortSignal; each?: (read: Promise<ReadableStreamReadResult<Uint8Array>>) => Promise<ReadableStreamReadResult<Uint8Array>> } = {},
): Promise<string | null> {
  if (!body) return '';
  const reader = body.getReader();
  const stop = () => void reader.cancel().catch(() => undefined);
  options.signal?.addEventListener('abort', stop, { once: true });
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await (options.each ? options.each(reader.read()) : reader.read());
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        stop();
        return null;
      }
      chunks.push(value);
    }
  } catch (e) {
    stop();
    throw e;
  } finally {
    options.signal?.removeEventListener('abort', stop);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

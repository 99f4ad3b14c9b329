/**
 * The one error storage throws when D1 or KV cannot serve a call. Every binding call in
 * storage/ goes through {@link guard} (or, for the revocation check, its own catch), so no
 * layer above has to recognise the runtime's error texts: the error handler maps this type to
 * 503 `unavailable` (http/errors.ts `toApiError`).
 */
export class StorageUnavailableError extends Error {
  override readonly name = 'StorageUnavailableError';
  /**
   * @param cause what the binding threw; its text is kept for the operator's log only.
   * @param description what the client is told instead (never the cause), or the default.
   */
  constructor(
    cause: unknown,
    readonly description?: string,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/**
 * A mistake in our own code (a bad argument, a misspelt property) surfaces as one of these:
 * it is a bug, not a store that cannot answer, and stays a 500 `server_error`.
 */
function isProgrammingError(e: unknown): boolean {
  return e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError || e instanceof SyntaxError;
}

/**
 * Runs one D1 or KV call (`prepare` included: it may throw synchronously) and turns its
 * failure into a {@link StorageUnavailableError}.
 *
 * @example
 * const row = await guard(() => db.prepare('SELECT * FROM users WHERE id = ?').bind(id).first<UserRow>());
 */
export async function guard<T>(call: () => Promise<T>, description?: string): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof StorageUnavailableError || isProgrammingError(e)) throw e;
    throw new StorageUnavailableError(e, description);
  }
}

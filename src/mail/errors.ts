/**
 * The one error the mail layer throws: the transport could not take the message (relay down,
 * refused, too slow, binding error). The error handler maps it to 503 `mail_unavailable`
 * (http/errors.ts `toApiError`); its cause goes to the operator's log only, never to a client.
 */
export class MailUnavailableError extends Error {
  override readonly name = 'MailUnavailableError';
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

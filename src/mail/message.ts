/** What the account flows hand to the mail layer: one recipient, plain text and HTML. */
export interface MailMessage {
  /** One validated ASCII address (auth/email-address.ts): never a list, never a display name. */
  to: string;
  subject: string;
  text: string;
  html: string;
  /** Names the message in the log (`verify_email`, `password_reset`, ...); never its content. */
  kind: string;
}

/** A message ready for a transport: the sender added from `EMAIL_FROM`. */
export interface OutgoingMail extends Omit<MailMessage, 'kind'> {
  from: { email: string; name: string };
}

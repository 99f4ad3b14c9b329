/**
 * Builds a message's plain text and simple HTML from one description, so every mail the
 * gateway sends looks alike: named for the app, links built from PUBLIC_URL only, no images,
 * no tracking, every value escaped. Flows describe their messages with {@link composeMail}
 * and send them with `sendMail` (send.ts).
 */
import type { Config } from '../config/schema';
import type { MailMessage } from './message';

export interface MailContent {
  /** Log name of the message (`verify_email`, `password_reset`, ...). */
  kind: string;
  to: string;
  subject: string;
  /** Plain sentences; each becomes a paragraph. */
  paragraphs: string[];
  /** The one thing to do: a button in HTML, the bare URL on its own line in text. */
  action?: { label: string; url: URL };
  /** A closing line such as "If this was not you, ignore this email." */
  footnote?: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/**
 * A link into the gateway: `PUBLIC_URL` + `AUTH_PREFIX` + `path`, never the request's Host
 * (a forged Host header must not be able to send a user's token to another site).
 *
 * @example
 * gatewayLink(config, '/password/reset', { token }) // https://auth.example.com/auth/password/reset?token=…
 */
export function gatewayLink(config: Config, path: string, params: Record<string, string> = {}): URL {
  const url = new URL(`${config.AUTH_PREFIX}${path}`, config.PUBLIC_URL);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url;
}

/**
 * @example
 * const message = composeMail(config, {
 *   kind: 'verify_email', to: user.email, subject: `Confirm your email for ${config.APP_NAME}`,
 *   paragraphs: ['Confirm this address to finish setting up your account.'],
 *   action: { label: 'Confirm email', url: gatewayLink(config, '/email/verify', { token }) },
 *   footnote: 'The link works for 24 hours. If you did not create an account, ignore this email.',
 * });
 */
export function composeMail(config: Config, content: MailContent): MailMessage {
  const app = config.APP_NAME;
  const text = [
    ...content.paragraphs,
    ...(content.action ? [`${content.action.label}:\n${content.action.url.href}`] : []),
    ...(content.footnote ? [content.footnote] : []),
    `-- \n${app}`,
  ].join('\n\n');
  const paragraph = (s: string) => `<p style="margin:0 0 16px">${escapeHtml(s)}</p>`;
  const action = content.action
    ? `<p style="margin:24px 0"><a href="${escapeHtml(content.action.url.href)}" style="background:#1f4fd1;color:#ffffff;padding:10px 18px;border-radius:6px;text-decoration:none;display:inline-block">${escapeHtml(content.action.label)}</a></p>` +
      `<p style="margin:0 0 16px;font-size:13px;color:#444444">Or open this link: <a href="${escapeHtml(content.action.url.href)}" style="color:#1f4fd1">${escapeHtml(content.action.url.href)}</a></p>`
    : '';
  const html =
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(content.subject)}</title></head>` +
    `<body style="margin:0;padding:24px;background:#ffffff;color:#1a1a1a;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif">` +
    `<div style="max-width:560px;margin:0 auto"><p style="margin:0 0 24px;font-weight:600">${escapeHtml(app)}</p>` +
    content.paragraphs.map(paragraph).join('') +
    action +
    (content.footnote ? `<p style="margin:24px 0 0;font-size:13px;color:#444444">${escapeHtml(content.footnote)}</p>` : '') +
    `</div></body></html>`;
  return { kind: content.kind, to: content.to, subject: content.subject, text, html };
}

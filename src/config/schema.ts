/**
 * The validated configuration. Every setting from docs/design.md is parsed here, once per isolate
 * (see `load.ts`); the rest of the code only ever sees the typed {@link Config}.
 */
import * as v from 'valibot';
import { mailSettings, type Sender } from './mail-settings';
import { HEX_COLOUR } from '../util/contrast';
import { routesSchema, type RouteConfig } from './routes-schema';

/** A raw setting may be a TOML value, a JSON value, or a JSON string holding one. */
function parseStructured(input: unknown): unknown {
  if (typeof input !== 'string') return input;
  const text = input.trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return input; // left as is: the schema names what it expected
  }
}

/**
 * A whole number between `min` and `max`; `unit` names what it counts in the error message
 * ("must be a whole number of seconds", "... of characters").
 */
const integerSetting = (fallback: number, min: number, max: number, unit: string) =>
  v.pipe(
    v.optional(v.union([v.string(), v.number()]), String(fallback)),
    v.transform((x) => (typeof x === 'number' ? x : x.trim() === '' ? fallback : Number(x))),
    v.number(`must be a whole number of ${unit}`),
    v.integer(`must be a whole number of ${unit}`),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );

const commaList = (lower: boolean) =>
  v.pipe(
    v.optional(v.union([v.string(), v.array(v.string())]), ''),
    v.transform((x) => (Array.isArray(x) ? x : x.split(','))),
    v.transform((xs) => xs.map((s) => (lower ? s.trim().toLowerCase() : s.trim())).filter(Boolean)),
  );

const enumSetting = <const T extends readonly [string, ...string[]]>(values: T, fallback: T[number]) =>
  v.pipe(
    v.optional(v.string(), fallback),
    v.transform((s) => (s.trim() === '' ? fallback : s.trim().toLowerCase())),
    v.picklist(values, `must be one of: ${values.join(', ')}`),
  );

const optionalText = v.pipe(
  v.optional(v.string()),
  v.transform((s) => (s === undefined || s.trim() === '' ? undefined : s.trim())),
);

/** An absolute http(s) URL reduced to its origin (scheme, host, port). */
const originUrl = v.pipe(
  v.string(),
  v.trim(),
  v.url('must be an absolute URL such as https://auth.example.com'),
  v.check((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), 'must use http or https'),
  v.transform((s) => (URL.canParse(s) ? new URL(s).origin : s)),
);

const boolSetting = (fallback: boolean) =>
  v.pipe(
    v.optional(v.union([v.string(), v.boolean()]), String(fallback)),
    v.transform((x) => (typeof x === 'boolean' ? String(x) : x.trim().toLowerCase() || String(fallback))),
    v.picklist(['true', 'false'], 'must be true or false'),
    v.transform((s) => s === 'true'),
  );

export const configSchema = v.object({
  ENVIRONMENT: enumSetting(['development', 'production'] as const, 'production'),
  PUBLIC_URL: v.optional(originUrl),
  SIGNING_KEYS: v.optional(v.pipe(v.unknown(), v.transform(parseStructured))),
  AUTH_PREFIX: v.pipe(
    v.optional(v.string(), '/auth'),
    v.transform((s) => s.trim().replace(/\/+$/, '') || '/auth'),
    v.regex(/^\/[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_-]*)*$/i, 'must be a path such as /auth'),
  ),
  ACCESS_TOKEN_TTL: integerSetting(600, 60, 86_400, 'seconds'),
  REFRESH_TOKEN_TTL: integerSetting(2_592_000, 300, 31_536_000, 'seconds'),
  /** How long an isolate reuses a "not revoked" answer per session (0 = read KV on every request). */
  REVOCATION_CACHE_SECONDS: integerSetting(10, 0, 60, 'seconds'),
  SESSION_MAX_AGE: integerSetting(7_776_000, 300, 31_536_000, 'seconds'),
  PASSWORD_LOGIN: enumSetting(['enabled', 'disabled'] as const, 'enabled'),
  PASSWORD_MIN_LENGTH: integerSetting(12, 8, 256, 'characters'),
  BREACHED_PASSWORD_CHECK: enumSetting(['off', 'required', 'best-effort'] as const, 'off'),
  REGISTRATION: enumSetting(['open', 'closed'] as const, 'open'),
  ALLOWED_EMAIL_DOMAINS: commaList(true),
  ADMIN_EMAILS: commaList(true),
  ALLOWED_RETURN_ORIGINS: v.pipe(
    commaList(false),
    v.array(originUrl),
  ),
  GITHUB_CLIENT_ID: optionalText,
  GITHUB_CLIENT_SECRET: optionalText,
  GOOGLE_CLIENT_ID: optionalText,
  GOOGLE_CLIENT_SECRET: optionalText,
  GITLAB_CLIENT_ID: optionalText,
  GITLAB_CLIENT_SECRET: optionalText,
  OIDC_ISSUER: v.optional(v.pipe(v.string(), v.trim(), v.url('must be the issuer URL'))),
  OIDC_CLIENT_ID: optionalText,
  OIDC_CLIENT_SECRET: optionalText,
  OIDC_NAME: v.pipe(v.optional(v.string(), 'OpenID Connect'), v.trim()),
  /** The claim of the generic provider's ID token (or userinfo) that lists the user's groups. */
  OIDC_GROUPS_CLAIM: v.pipe(
    v.optional(v.string(), 'groups'),
    v.trim(),
    v.transform((s) => s || 'groups'),
    v.regex(/^[A-Za-z0-9_:./-]{1,100}$/, 'must be a claim name such as groups (letters, digits, _ : . / -; 100 characters at most)'),
  ),
  DEV_OIDC_ISSUER: v.optional(v.pipe(v.string(), v.trim(), v.url('must be the issuer URL'))),
  STORE_PROVIDER_TOKENS: boolSetting(false),
  TOKEN_ENCRYPTION_KEY: optionalText,
  /**
   * How old a session's groups may be, in seconds: older ones are re-read from the provider at
   * the next refresh, or (when it cannot be asked) no longer vouched for (README "Groups").
   */
  GROUPS_MAX_AGE: integerSetting(300, 30, 86_400, 'seconds'),
  ROUTES: v.pipe(v.optional(v.unknown(), []), v.transform(parseStructured), v.transform((x) => x ?? []), routesSchema),
  AUDIT_RETENTION_DAYS: integerSetting(90, 1, 3650, 'days'),
  ALERT_WEBHOOK_URL: v.optional(v.pipe(v.string(), v.trim(), v.url('must be an absolute URL'))),
  LOGIN_FAILURE_LIMIT: integerSetting(100, 5, 10_000, 'failed sign-ins'),
  /** Failed sign-ins per account allowed without delay; after that each one doubles the wait. */
  LOGIN_BACKOFF_AFTER: integerSetting(5, 1, 1000, 'failed sign-ins'),
  /** The longest wait the per-account back-off imposes, in seconds. */
  LOGIN_BACKOFF_MAX: integerSetting(900, 1, 3600, 'seconds'),
  /** Must equal `period` of the `[[ratelimits]]` bindings: it is the `Retry-After` of a 429. */
  RATE_LIMIT_PERIOD: v.pipe(integerSetting(60, 10, 60, 'seconds'), v.picklist([10, 60], 'must be 10 or 60 (the binding period)')),
  // --- Request log volume ---
  /**
   * `all`: one `request` line per request (the default). `refusals`: only requests not allowed
   * (deny, invalid, rate_limited, error): an allowed request then writes no log line, which is
   * most of what a public route costs beyond a bare pass-through (BENCHMARKS.md).
   */
  REQUEST_LOG: enumSetting(['all', 'refusals'] as const, 'all'),
  // --- The app's identity on pages and in mail ---
  /** The name users know the app by: page titles, headings, mail subjects and signatures. */
  APP_NAME: v.pipe(v.optional(v.string(), 'Gatehouse'), v.trim(), v.transform((s) => s || 'Gatehouse'), v.maxLength(60, 'is too long (60 characters at most)')),
  // --- Mail (src/mail/): the transport follows from what is set (load.ts) ---
  /** `smtps://user:pass@host:465` (a secret); `smtp://` only to a loopback mail catcher. */
  SMTP_URL: mailSettings.SMTP_URL,
  /** The sender of every mail; default `no-reply@<PUBLIC_URL's host>` named APP_NAME. */
  EMAIL_FROM: mailSettings.EMAIL_FROM,
  /**
   * The app's logo on every page, beside its name: an https URL, or a path on the gateway's own
   * origin (`/logo.svg`). The pages' CSP allows images from exactly that origin.
   */
  APP_LOGO_URL: v.pipe(
    optionalText,
    // A path on our own origin (not `//host`) or an absolute https URL; no spaces or backslashes
    // (they are how URL parsers are made to disagree).
    v.check(
      (s) => s === undefined || (s.length <= 2048 && !/[\s\\]/.test(s) && (s.startsWith('/') ? !s.startsWith('//') : URL.canParse(s) && new URL(s).protocol === 'https:')),
      'must be an https URL such as https://cdn.example.com/logo.svg, or a path on the gateway such as /logo.svg (2048 characters at most)',
    ),
  ),
  /** The accent colour of buttons and links, `#rrggbb`; the text on it is black or white, whichever contrasts more. */
  APP_ACCENT: v.pipe(
    optionalText,
    v.check((s) => s === undefined || HEX_COLOUR.test(s), 'must be a colour written #rrggbb, such as #2957c8'),
    v.transform((s) => s?.toLowerCase()),
  ),
  // --- Accounts: email verification; the default follows the mail transport (load.ts) ---
  /** `required` | `optional` | `off`; unset: `required` with a mail transport, `off` without. */
  EMAIL_VERIFICATION: v.pipe(
    optionalText,
    v.transform((s) => s?.toLowerCase()),
    v.optional(v.picklist(['required', 'optional', 'off'] as const, 'must be one of: required, optional, off')),
  ),
  // --- Passkeys (WebAuthn) ---
  /** `disabled` removes the passkey buttons and refuses every `/passkeys` endpoint (stored passkeys are kept). */
  PASSKEYS: enumSetting(['enabled', 'disabled'] as const, 'enabled'),
  // --- Second factors (TOTP, recovery codes, step-up; README "Second factors") ---
  /** Users holding any of these roles must have a second factor: they enrol at their next sign-in. */
  MFA_REQUIRED_ROLES: commaList(true),
  /** How recent a sign-in must be to enrol or remove a factor or regenerate recovery codes. */
  RECENT_AUTH_SECONDS: integerSetting(600, 60, 86_400, 'seconds'),
  /** Wrong second-factor codes per account within 15 minutes before further codes wait (429). */
  MFA_ATTEMPT_LIMIT: integerSetting(5, 3, 100, 'wrong codes'),
  /** How long a sign-in that still owes its second factor may be completed. */
  MFA_PENDING_SECONDS: integerSetting(300, 60, 900, 'seconds'),
  // --- Email sign-in (auth/email-code.ts): a one-time code by mail; needs a transport ---
  EMAIL_LOGIN: enumSetting(['enabled', 'disabled'] as const, 'disabled'),
  // --- Clients of the authorization server (README "Apps (OpenID Connect)") ---
  /** `open`: anyone may register a client at `/oauth/register` (RFC 7591), rate-limited; `off`: that endpoint is 404. */
  DYNAMIC_CLIENT_REGISTRATION: enumSetting(['off', 'open'] as const, 'off'),
  /**
   * Redirect URIs a dynamically registered client may have. `loopback-and-https`: https
   * anywhere, http on a loopback address, a private-use scheme for a public client;
   * `loopback-only`: only the last two (native and local apps; web apps are registered by an admin).
   */
  DCR_REDIRECT_URI_POLICY: enumSetting(['loopback-and-https', 'loopback-only'] as const, 'loopback-and-https'),
  /**
   * Clients identified by the https URL of their metadata document (as MCP clients are).
   * `auto`: on exactly when DYNAMIC_CLIENT_REGISTRATION is `open`; `on` or `off` decide alone.
   */
  CLIENT_ID_METADATA_DOCUMENTS: enumSetting(['auto', 'on', 'off'] as const, 'auto'),
  // --- SCIM provisioning (README "SCIM provisioning") ---
  /** The bearer token of the directory (Okta, Entra) at `{AUTH_PREFIX}/scim/v2`; unset: that endpoint is 404. */
  SCIM_TOKEN: v.pipe(
    optionalText,
    v.check((s) => s === undefined || s.length >= 32, 'must be at least 32 characters (e.g. openssl rand -base64 32)'),
  ),
  /**
   * The Shared Signals (CAEP) transmitters (README "Shared Signals (CAEP)"): checked by
   * config/shared-signals.ts at the receiver's first push (its checks stay out of start-up).
   */
  SHARED_SIGNALS: v.optional(v.pipe(v.unknown(), v.transform(parseStructured))),
});

export type RawConfig = v.InferOutput<typeof configSchema>;

/** What the app uses: the raw settings plus values derived from them once. */
export interface Config extends Omit<RawConfig, 'PUBLIC_URL' | 'SIGNING_KEYS' | 'ROUTES' | 'EMAIL_VERIFICATION'> {
  PUBLIC_URL: string;
  /** Parsed JWK Set from `SIGNING_KEYS`, or undefined in development (keys are generated). */
  SIGNING_KEYS?: unknown;
  ROUTES: RouteConfig[];
  isDevelopment: boolean;
  /** Some route decides on groups (routes-schema.ts `routesNeedGroups`): membership must stay fresh. */
  groupsNeeded: boolean;
  /** `aud` of access tokens. */
  accessTokenAudience: string;
  /**
   * How mail leaves (src/mail/): `smtp` when SMTP_URL is set, else `email-service` when the
   * Worker has an `EMAIL` send_email binding, else null: the features that need mail are off.
   */
  mailTransport: 'smtp' | 'email-service' | null;
  /** The sender: EMAIL_FROM, or `no-reply@<PUBLIC_URL's host>`, named APP_NAME unless it names itself. */
  mailFrom: Required<Sender>;
  /** EMAIL_VERIFICATION resolved against the transport (load.ts): never `required`/`optional` without mail. */
  EMAIL_VERIFICATION: 'required' | 'optional' | 'off';
}

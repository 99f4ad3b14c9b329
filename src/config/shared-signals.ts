/**
 * `SHARED_SIGNALS`: the Shared Signals (CAEP) transmitters whose Security Event Tokens this
 * gateway receives by push (RFC 8935), README "Shared Signals (CAEP)". A JSON list (or one
 * object), each entry one transmitter at `POST {AUTH_PREFIX}/ssf/events/<id>`:
 * - `id`: the path segment (letters, digits, `-`, `_`);
 * - `issuer`: the SETs' `iss`, exactly; `jwks_uri`: its signing keys (https; http only in development);
 * - `audience`: the SETs' `aud` (default: this endpoint's URL), not that of another transmitter of the same issuer;
 * - `authorization`: optional bearer secret the transmitter sends (RFC 8935 §2), 32 characters or more;
 * - `provider`: which of our sign-in providers its `iss_sub` and `opaque` subjects are subjects of;
 * - `subject_issuers`: the `iss` an `iss_sub` subject may name (default: `issuer`).
 * Unset: the endpoint answers 404. Only the receiver's endpoint (a lazily loaded route) reads
 * this module, so it costs start-up nothing: it is checked once per isolate at the first push,
 * and a mistake makes the endpoint answer `configuration_error` (500, logged once), refusing
 * every push, while the rest of the gateway runs on.
 */
import * as v from 'valibot';
import { ConfigError } from './load';
import type { Config } from './schema';
import { memoize } from '../util/memo';

/** An absolute https URL, or http anywhere in development (checked in load.ts). */
const absoluteUrl = v.pipe(v.string(), v.trim(), v.check((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), 'must be an absolute http(s) URL'));

const transmitterSchema = v.strictObject(
  {
    id: v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9_-]{0,39}$/i, 'must be 1 to 40 letters, digits, - or _')),
    issuer: v.pipe(v.string(), v.trim(), v.minLength(1, 'must be the transmitter’s issuer'), v.maxLength(2048, 'is too long')),
    jwks_uri: absoluteUrl,
    audience: v.optional(v.pipe(v.string(), v.trim(), v.minLength(1, 'must not be empty'), v.maxLength(2048, 'is too long'))),
    authorization: v.optional(v.pipe(v.string(), v.minLength(32, 'must be at least 32 characters (e.g. openssl rand -base64 32)'), v.maxLength(512, 'is too long'))),
    provider: v.pipe(v.string(), v.minLength(1, 'must name a sign-in provider (oidc, google, gitlab, github, dev)')),
    subject_issuers: v.optional(v.array(v.pipe(v.string(), v.trim(), v.minLength(1, 'must not be empty')))),
  },
  'must be a transmitter: an object with id, issuer, jwks_uri and provider (and optionally audience, authorization, subject_issuers), nothing else',
);

export const sharedSignalsSchema = v.pipe(
  v.unknown(),
  // One transmitter may be given alone; its problems are then named as those of the list's first.
  v.transform((x) => (Array.isArray(x) ? x : [x])),
  v.array(transmitterSchema),
  v.check((xs) => new Set(xs.map((t) => t.id.toLowerCase())).size === xs.length, 'names one transmitter id twice'),
);

export interface Transmitter {
  id: string;
  issuer: string;
  jwksUri: string;
  /** The `aud` its SETs carry for us. */
  audience: string;
  /** The bearer secret it sends, or null when it sends none. */
  authorization: string | null;
  /** The sign-in provider (its id) whose subjects its `iss_sub` and `opaque` identifiers name. */
  provider: string;
  subjectIssuers: string[];
}

type RawTransmitter = v.InferOutput<typeof transmitterSchema>;

/** The path of a transmitter's push endpoint under AUTH_PREFIX. */
export const sharedSignalsPath = (id: string) => `/ssf/events/${id}`;

/** The transmitters as the app uses them; the default audience is the endpoint's own URL. */
function toTransmitters(raw: RawTransmitter[], publicUrl: string, authPrefix: string): Transmitter[] {
  return raw.map((t) => ({
    id: t.id,
    issuer: t.issuer,
    jwksUri: t.jwks_uri,
    audience: t.audience ?? `${publicUrl}${authPrefix}${sharedSignalsPath(t.id)}`,
    authorization: t.authorization ?? null,
    provider: t.provider,
    subjectIssuers: t.subject_issuers ?? [t.issuer],
  }));
}

/** Which sign-in provider ids the configuration enables (providers/catalog.ts decides the same way). */
function configuredProviderIds(config: Config): Set<string> {
  const ids = new Set<string>();
  if (config.GITHUB_CLIENT_ID) ids.add('github');
  if (config.GOOGLE_CLIENT_ID) ids.add('google');
  if (config.GITLAB_CLIENT_ID) ids.add('gitlab');
  if (config.OIDC_ISSUER) ids.add('oidc');
  if (config.isDevelopment && config.DEV_OIDC_ISSUER) ids.add('dev');
  return ids;
}

/** SHARED_SIGNALS, checked; a mistake is a {@link ConfigError} naming it (and where in it), never a value. */
export function parseTransmitters(config: Config): Transmitter[] {
  if (config.SHARED_SIGNALS === undefined) return [];
  const parsed = v.safeParse(sharedSignalsSchema, config.SHARED_SIGNALS);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const path = issue.path?.map((p) => String(p.key)) ?? [];
    throw new ConfigError('SHARED_SIGNALS', `${issue.message}${path.length > 0 ? ` (at ${path.join('.')})` : ''}`);
  }
  const transmitters = toTransmitters(parsed.output, config.PUBLIC_URL, config.AUTH_PREFIX);
  const providers = configuredProviderIds(config);
  for (const t of transmitters) {
    if (!providers.has(t.provider)) throw new ConfigError('SHARED_SIGNALS', `transmitter ${t.id}: provider ${t.provider} is not a sign-in provider configured here (${[...providers].join(', ') || 'none is'})`);
    if (!config.isDevelopment && new URL(t.jwksUri).protocol !== 'https:') throw new ConfigError('SHARED_SIGNALS', `transmitter ${t.id}: jwks_uri must use https in production (anyone on the path could swap the keys)`);
  }
  // A SET names its transmitter by `iss` and `aud` alone: two sharing both would each accept the
  // other's SETs, read their subjects as subjects of its own provider, and spend the jti apart.
  transmitters.forEach((t, i) => {
    const twin = transmitters.slice(i + 1).find((u) => u.issuer === t.issuer && u.audience === t.audience);
    if (twin) throw new ConfigError('SHARED_SIGNALS', `transmitters ${t.id} and ${twin.id} have the same issuer and audience: a security event token of one would be accepted by the other (give each its own audience)`);
  });
  return transmitters;
}

/** {@link parseTransmitters}, once per config: the transmitters, or the one error (logged once). */
export const transmittersOf = memoize((config: Config): { ok: true; transmitters: Transmitter[] } | { ok: false; error: ConfigError } => {
  try {
    return { ok: true, transmitters: parseTransmitters(config) };
  } catch (e) {
    if (e instanceof ConfigError) return { ok: false, error: e };
    throw e;
  }
});

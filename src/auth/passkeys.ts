/**
 * Passkeys (WebAuthn): registration options and verification, assertion options and
 * verification, for sign-in with a passkey alone and as a second factor.
 *
 * The WebAuthn checks themselves are `@simplewebauthn/server`'s. It is large (its attestation
 * formats bring X.509 and ASN.1 parsers), so it is loaded with a dynamic `import()` on first
 * use, never at isolate start-up and never on the proxy or forward-auth path.
 *
 * Relying party: the id is `PUBLIC_URL`'s host name, the only accepted origin is `PUBLIC_URL`.
 * Challenges are single-use and short-lived in D1 (storage/webauthn-challenges.ts); the
 * challenge a response answers is read from its clientDataJSON and used up before anything
 * else is checked, so a response is accepted at most once, whatever else is wrong with it.
 */
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Context } from 'hono';
import { base64url } from 'jose';
import * as v from 'valibot';
import type { Config } from '../config/schema';
import type { AppEnv } from '../env';
import { ApiError, badRequest } from '../http/errors';
import { log } from '../observability/log';
import { findPasskey, insertPasskey, listPasskeys, recordPasskeyUse, type Passkey } from '../storage/passkeys';
import { findUserById, type User } from '../storage/users';
import { consumeChallenge, saveChallenge, type ChallengePurpose } from '../storage/webauthn-challenges';
import { nowSeconds as now } from '../util/time';
import { recordEvent } from './events';

/** How long a challenge can be answered: the browser's own timeout is set to the same. */
export const CHALLENGE_TTL_S = 300;
/** More passkeys than this per account is a mistake or abuse, not a use case. */
export const MAX_PASSKEYS_PER_USER = 20;

/**
 * The `amr` values (RFC 8176) a passkey sign-in should carry: `hwk` for a device-bound key,
 * `swk` for a synced (backed-up, multi-device) one, whose private key leaves the device; and,
 * when the authenticator verified the user (PIN or biometric), `user` plus `mfa`, since
 * possession and a verification of the person were both proven. Without UV only presence
 * (`user`) was shown: one factor.
 */
export function passkeyAmr(result: { deviceType: Passkey['deviceType']; userVerified: boolean }): string[] {
  const key = result.deviceType === 'multiDevice' ? 'swk' : 'hwk';
  return result.userVerified ? [key, 'user', 'mfa'] : [key, 'user'];
}

/**
 * Whether passkeys can be offered: the setting, and a `PUBLIC_URL` whose host can be a WebAuthn
 * relying party id (a domain name or localhost; browsers refuse IP addresses).
 */
export function passkeysAvailable(config: Pick<Config, 'PASSKEYS' | 'PUBLIC_URL'>): boolean {
  const host = new URL(config.PUBLIC_URL).hostname;
  return config.PASSKEYS === 'enabled' && !/^\d+\.\d+\.\d+\.\d+$/.test(host) && !host.startsWith('[');
}

function relyingParty(config: Config) {
  return { id: new URL(config.PUBLIC_URL).hostname, origin: config.PUBLIC_URL, name: config.APP_NAME };
}

/** The library, loaded on first use only (see the module comment). */
const webauthn = () => import('@simplewebauthn/server');

// --- Input shapes -------------------------------------------------------------------------

const b64u = (max: number) => v.pipe(v.string('must be a string'), v.maxLength(max, 'is too long'), v.regex(/^[A-Za-z0-9_-]*$/, 'must be base64url'));
const TRANSPORTS = ['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'] as const;
const isTransport = (t: string): t is (typeof TRANSPORTS)[number] => (TRANSPORTS as readonly string[]).includes(t);

const credentialBase = {
  // Credential ids are at most 1023 bytes (WebAuthn L3): 1364 base64url characters.
  id: b64u(1400),
  rawId: b64u(1400),
  type: v.literal('public-key', 'must be "public-key"'),
  authenticatorAttachment: v.optional(v.picklist(['platform', 'cross-platform'], 'must be "platform" or "cross-platform"')),
  clientExtensionResults: v.optional(v.record(v.string(), v.unknown())),
};

/** What `PublicKeyCredential.toJSON()` gives after `navigator.credentials.create()`. */
export const registrationCredentialSchema = v.object({
  ...credentialBase,
  // Browsers add fields (publicKey, publicKeyAlgorithm, authenticatorData): they are ignored.
  response: v.looseObject({
    clientDataJSON: b64u(4096),
    attestationObject: b64u(16_384),
    transports: v.optional(v.pipe(v.array(v.pipe(v.string(), v.maxLength(32))), v.maxLength(10))),
  }),
});

/** What `PublicKeyCredential.toJSON()` gives after `navigator.credentials.get()`. */
export const authenticationCredentialSchema = v.object({
  ...credentialBase,
  response: v.looseObject({
    clientDataJSON: b64u(4096),
    authenticatorData: b64u(4096),
    signature: b64u(1024),
    userHandle: v.optional(v.nullable(b64u(128))),
  }),
});

export type RegistrationCredential = v.InferOutput<typeof registrationCredentialSchema>;
export type AuthenticationCredential = v.InferOutput<typeof authenticationCredentialSchema>;

/** A user-chosen passkey name: trimmed, 1 to 60 characters, no control characters. */
export const passkeyNameSchema = v.pipe(
  v.string('must be a string'),
  v.trim(),
  v.minLength(1, 'is required'),
  v.maxLength(60, 'is too long (60 characters at most)'),
  v.regex(/^[^\p{Cc}]*$/u, 'must not contain control characters'),
);

/** The challenge and type a response's clientDataJSON names, or a 400 if it names none. */
function clientData(clientDataJSON: string): { challenge: string; type: unknown; origin: unknown } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(base64url.decode(clientDataJSON)));
  } catch {
    throw badRequest('Field "credential.response.clientDataJSON" is not base64url-encoded JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || !('challenge' in parsed) || typeof parsed.challenge !== 'string' || parsed.challenge.length > 256) {
    throw badRequest('Field "credential.response.clientDataJSON" has no challenge.');
  }
  return { challenge: parsed.challenge, type: 'type' in parsed ? parsed.type : undefined, origin: 'origin' in parsed ? parsed.origin : undefined };
}

/** The user id a user handle carries (registrationOptions makes it), or null if it is not text. */
function decodeUserHandle(handle: string): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(base64url.decode(handle));
  } catch {
    return null;
  }
}

/** A refused passkey response: 401 `invalid_credentials` with a machine-readable `reason`. */
export class PasskeyRefused extends ApiError {
  constructor(
    readonly reason: 'challenge' | 'origin' | 'unknown_credential' | 'counter' | 'verification' | 'user_mismatch',
    description: string,
  ) {
    super('invalid_credentials', description, { fields: { reason } });
  }
}

/** Uses up the challenge a response answers; refuses one that is unknown, used, expired or not for `userId`. */
async function useChallenge(c: Context<AppEnv>, challenge: string, purpose: ChallengePurpose, userId: string | null): Promise<void> {
  const issued = await consumeChallenge(c.env.DB, challenge, purpose, now());
  if (!issued || issued.userId !== userId) {
    throw new PasskeyRefused('challenge', 'This passkey request has expired or was already used. Start again.');
  }
}

function checkOrigin(config: Config, origin: unknown): void {
  if (origin !== relyingParty(config).origin) throw new PasskeyRefused('origin', 'The passkey response was made for another site.');
}

// --- Registration -------------------------------------------------------------------------

/** Options for `navigator.credentials.create()`; the challenge is stored, bound to the user. */
export async function registrationOptions(c: Context<AppEnv>, user: User): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const config = c.get('config');
  const rp = relyingParty(config);
  const existing = await listPasskeys(c.env.DB, user.id);
  if (existing.length >= MAX_PASSKEYS_PER_USER) throw new ApiError('conflict', `An account can have at most ${MAX_PASSKEYS_PER_USER} passkeys. Remove one first.`);
  const { generateRegistrationOptions } = await webauthn();
  const options = await generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    // The user handle is our random user id (no personal data), so a passkey names its account.
    userID: new Uint8Array(new TextEncoder().encode(user.id)),
    userName: user.email,
    userDisplayName: user.name ?? user.email,
    timeout: CHALLENGE_TTL_S * 1000,
    attestationType: 'none',
    excludeCredentials: existing.map((p) => ({ id: p.id, transports: p.transports.filter(isTransport) })),
    authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'preferred' },
  });
  const t = now();
  await saveChallenge(c.env.DB, options.challenge, 'register', user.id, t + CHALLENGE_TTL_S, t);
  return options;
}

/** Verifies a registration response for `user` and stores the new passkey. */
export async function finishRegistration(c: Context<AppEnv>, user: User, credential: RegistrationCredential, name: string): Promise<Passkey> {
  const config = c.get('config');
  const rp = relyingParty(config);
  const data = clientData(credential.response.clientDataJSON);
  await useChallenge(c, data.challenge, 'register', user.id);
  checkOrigin(config, data.origin);
  const response: RegistrationResponseJSON = {
    id: credential.id,
    rawId: credential.rawId,
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment,
    clientExtensionResults: {},
    response: {
      clientDataJSON: credential.response.clientDataJSON,
      attestationObject: credential.response.attestationObject,
      transports: credential.response.transports?.filter(isTransport),
    },
  };
  const { verifyRegistrationResponse } = await webauthn();
  let info;
  try {
    const result = await verifyRegistrationResponse({
      response,
      expectedChallenge: data.challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      requireUserVerification: false,
    });
    info = result.verified ? result.registrationInfo : undefined;
  } catch (e) {
    log.warn('passkey_registration_refused', { user_id: user.id, error: e instanceof Error ? e.message.slice(0, 300) : String(e) });
  }
  if (!info) throw badRequest('The passkey could not be verified. Try again, or use another authenticator.');
  const passkey = {
    id: info.credential.id,
    userId: user.id,
    publicKey: base64url.encode(info.credential.publicKey),
    counter: info.credential.counter,
    transports: (info.credential.transports ?? []).filter(isTransport),
    deviceType: info.credentialDeviceType,
    backedUp: info.credentialBackedUp,
    name,
  };
  const t = now();
  if (!(await insertPasskey(c.env.DB, passkey, t, user))) {
    // Not stored: the id is taken, or the account changed since it was read (a claim removed the holder's ways in).
    if (await findPasskey(c.env.DB, passkey.id)) throw new ApiError('conflict', 'This passkey is already registered.');
    throw new ApiError('conflict', 'Your account changed meanwhile, so nothing was added. Sign in again.');
  }
  await recordEvent(c, { event: 'passkey_added', outcome: 'success', userId: user.id, detail: { credential: passkey.id.slice(0, 16), device_type: passkey.deviceType } });
  return { ...passkey, createdAt: t, lastUsedAt: null };
}

// --- Authentication -----------------------------------------------------------------------

/**
 * Options for `navigator.credentials.get()`. `userId` null: a passkey sign-in (discoverable
 * credentials, empty `allowCredentials`, the challenge bound to no one). A user id: a second
 * factor for that user (their passkeys allowed, the challenge bound to them).
 */
export async function authenticationOptions(c: Context<AppEnv>, userId: string | null): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const rp = relyingParty(c.get('config'));
  const allow = userId === null ? [] : (await listPasskeys(c.env.DB, userId)).map((p) => ({ id: p.id, transports: p.transports.filter(isTransport) }));
  const { generateAuthenticationOptions } = await webauthn();
  const options = await generateAuthenticationOptions({ rpID: rp.id, allowCredentials: allow, userVerification: 'preferred', timeout: CHALLENGE_TTL_S * 1000 });
  const t = now();
  await saveChallenge(c.env.DB, options.challenge, 'authenticate', userId, t + CHALLENGE_TTL_S, t);
  return options;
}

export interface VerifiedAssertion {
  user: User;
  passkey: Passkey;
  userVerified: boolean;
}

/**
 * Verifies an assertion: the challenge (single use, for `forUserId`), the origin, the rp id,
 * the signature with the stored key, and the signature counter, which must increase whenever
 * either side is non-zero (a counter going backwards means a cloned authenticator: refused and
 * recorded as a security event). Then records the use (counter, backup flag, time). Refusals
 * throw {@link PasskeyRefused} (401) or 403 `forbidden` for a disabled account.
 *
 * `forUserId` null: a passkey sign-in, any user's passkey. A user id: only that user's
 * passkeys, against a challenge issued for that user ({@link verifyPasskeyForUser}).
 */
export async function verifyPasskeyAssertion(c: Context<AppEnv>, credential: AuthenticationCredential, forUserId: string | null): Promise<VerifiedAssertion> {
  const config = c.get('config');
  const rp = relyingParty(config);
  const data = clientData(credential.response.clientDataJSON);
  await useChallenge(c, data.challenge, 'authenticate', forUserId);
  checkOrigin(config, data.origin);
  const passkey = await findPasskey(c.env.DB, credential.id);
  if (!passkey) throw new PasskeyRefused('unknown_credential', 'This passkey is not registered here. It may have been removed.');
  const handle = credential.response.userHandle;
  const handleNames = handle ? decodeUserHandle(handle) : passkey.userId;
  if ((forUserId !== null && passkey.userId !== forUserId) || handleNames !== passkey.userId) {
    throw new PasskeyRefused('user_mismatch', 'This passkey belongs to another account.');
  }
  const response: AuthenticationResponseJSON = {
    id: credential.id,
    rawId: credential.rawId,
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment,
    clientExtensionResults: {},
    response: {
      clientDataJSON: credential.response.clientDataJSON,
      authenticatorData: credential.response.authenticatorData,
      signature: credential.response.signature,
      userHandle: handle ?? undefined,
    },
  };
  const { verifyAuthenticationResponse } = await webauthn();
  let info;
  try {
    const result = await verifyAuthenticationResponse({
      response,
      expectedChallenge: data.challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      // Counter 0: the library skips its own counter check, which runs before the signature
      // check; ours below runs after it, so only a genuine assertion can report a regression.
      credential: { id: passkey.id, publicKey: new Uint8Array(base64url.decode(passkey.publicKey)), counter: 0, transports: passkey.transports },
      requireUserVerification: false,
    });
    info = result.verified ? result.authenticationInfo : undefined;
  } catch (e) {
    log.warn('passkey_assertion_refused', { user_id: passkey.userId, error: e instanceof Error ? e.message.slice(0, 300) : String(e) });
  }
  if (!info) throw new PasskeyRefused('verification', 'The passkey response could not be verified.');
  if ((info.newCounter > 0 || passkey.counter > 0) && info.newCounter <= passkey.counter) {
    await recordEvent(c, {
      event: 'passkey_counter_regression',
      outcome: 'security',
      userId: passkey.userId,
      detail: { credential: passkey.id.slice(0, 16), stored: passkey.counter, presented: info.newCounter, message: 'A passkey signature counter did not increase: the authenticator may have been cloned.' },
    });
    throw new PasskeyRefused('counter', "This passkey's signature counter went backwards, so it may have been copied. It was refused.");
  }
  const user = await findUserById(c.env.DB, passkey.userId);
  if (!user) throw new PasskeyRefused('unknown_credential', 'This passkey is not registered here. It may have been removed.');
  if (user.disabledAt !== null) throw new ApiError('forbidden', 'This account is disabled.');
  const t = now();
  const recorded = await recordPasskeyUse(c.env.DB, { id: passkey.id, previousCounter: passkey.counter, counter: info.newCounter, backedUp: info.credentialBackedUp }, t);
  // Another assertion of this passkey was accepted since we read it: only one of the two may pass.
  if (!recorded) throw new PasskeyRefused('counter', 'This passkey was used by another request at the same moment. Try again.');
  return {
    user,
    passkey: { ...passkey, counter: info.newCounter, backedUp: info.credentialBackedUp, deviceType: info.credentialDeviceType, lastUsedAt: t },
    userVerified: info.userVerified,
  };
}

/**
 * A passkey as a second factor: verifies `credential` for `userId` only (the challenge must come
 * from `authenticationOptions(c, userId)`). For the pending state after a password sign-in.
 */
export function verifyPasskeyForUser(c: Context<AppEnv>, userId: string, credential: AuthenticationCredential): Promise<VerifiedAssertion> {
  return verifyPasskeyAssertion(c, credential, userId);
}

/**
 * A software authenticator for the passkey tests: a real ES256 key pair made with WebCrypto,
 * and real WebAuthn registration and assertion responses built from it (CBOR attestation
 * object with "none" attestation, authenticator data, clientDataJSON, DER signature), so the
 * server's verification with @simplewebauthn/server runs for real, nothing mocked.
 */
import { base64url } from 'jose';
import { call, PUBLIC_URL, type CallOptions } from './helpers';

// --- Minimal CBOR encoder (unsigned/negative integers, byte and text strings, maps) ---------

function head(major: number, n: number): number[] {
  if (n < 24) return [(major << 5) | n];
  if (n < 0x100) return [(major << 5) | 24, n];
  if (n < 0x10000) return [(major << 5) | 25, n >> 8, n & 0xff];
  return [(major << 5) | 26, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

type Cbor = number | string | Uint8Array | Map<Cbor, Cbor>;

export function cbor(value: Cbor): Uint8Array {
  const out: number[] = [];
  const put = (x: Cbor) => {
    if (typeof x === 'number') out.push(...(x >= 0 ? head(0, x) : head(1, -1 - x)));
    else if (typeof x === 'string') {
      const bytes = new TextEncoder().encode(x);
      out.push(...head(3, bytes.length), ...bytes);
    } else if (x instanceof Uint8Array) out.push(...head(2, x.length), ...x);
    else {
      out.push(...head(5, x.size));
      for (const [k, v] of x) {
        put(k);
        put(v);
      }
    }
  };
  put(value);
  return new Uint8Array(out);
}

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) {
    out.set(p, i);
    i += p.length;
  }
  return out;
};

const u32 = (n: number) => new Uint8Array([(n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
const sha256 = async (bytes: Uint8Array) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
const b64u = (bytes: Uint8Array) => base64url.encode(bytes);
const text = (s: string) => new TextEncoder().encode(s);

/** WebCrypto's ECDSA signature is r||s (IEEE P1363); WebAuthn sends ASN.1 DER. */
function derSignature(raw: Uint8Array): Uint8Array {
  const int = (b: Uint8Array) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.slice(i);
    if (v[0]! & 0x80) v = concat(new Uint8Array([0]), v);
    return concat(new Uint8Array([0x02, v.length]), v);
  };
  const body = concat(int(raw.slice(0, 32)), int(raw.slice(32)));
  return concat(new Uint8Array([0x30, body.length]), body);
}

export const FLAGS = { UP: 0x01, UV: 0x04, BE: 0x08, BS: 0x10, AT: 0x40 } as const;

export interface ClientDataOverrides {
  origin?: string;
  type?: string;
  challenge?: string;
}

/** One passkey on a software authenticator. */
export class SoftAuthenticator {
  counter = 0;
  private constructor(
    readonly credentialId: Uint8Array,
    private readonly keys: CryptoKeyPair,
    readonly rpId: string,
    /** The user handle the passkey stores (the server's user.id, as registration gave it). */
    public userHandle: string | null = null,
  ) {}

  static async create(opts: { rpId?: string; counter?: number } = {}): Promise<SoftAuthenticator> {
    const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const a = new SoftAuthenticator(crypto.getRandomValues(new Uint8Array(32)), keys, opts.rpId ?? new URL(PUBLIC_URL).hostname);
    a.counter = opts.counter ?? 0;
    return a;
  }

  get id(): string {
    return b64u(this.credentialId);
  }

  private async coseKey(): Promise<Uint8Array> {
    const jwk = (await crypto.subtle.exportKey('jwk', this.keys.publicKey)) as JsonWebKey;
    return cbor(
      new Map<Cbor, Cbor>([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, base64url.decode(jwk.x!)],
        [-3, base64url.decode(jwk.y!)],
      ]),
    );
  }

  private async authData(flags: number, withCredential: boolean, rpId = this.rpId): Promise<Uint8Array> {
    const base = concat(await sha256(text(rpId)), new Uint8Array([flags | (withCredential ? FLAGS.AT : 0)]), u32(this.counter));
    if (!withCredential) return base;
    const len = new Uint8Array([this.credentialId.length >> 8, this.credentialId.length & 0xff]);
    return concat(base, new Uint8Array(16), len, this.credentialId, await this.coseKey());
  }

  /** The JSON a browser's `navigator.credentials.create()` + `toJSON()` gives for `options`. */
  async register(
    options: { challenge: string; user: { id: string } },
    o: ClientDataOverrides & { rpId?: string; flags?: number; transports?: string[] } = {},
  ) {
    this.userHandle = options.user.id;
    const clientDataJSON = text(JSON.stringify({ type: o.type ?? 'webauthn.create', challenge: o.challenge ?? options.challenge, origin: o.origin ?? PUBLIC_URL, crossOrigin: false }));
    const authData = await this.authData(o.flags ?? FLAGS.UP | FLAGS.UV, true, o.rpId);
    const attestationObject = cbor(new Map<Cbor, Cbor>([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]));
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
      response: { clientDataJSON: b64u(clientDataJSON), attestationObject: b64u(attestationObject), transports: o.transports ?? ['internal'] },
    };
  }

  /** The JSON of `navigator.credentials.get()`; the counter goes up first unless `counter` is given. */
  async assert(
    options: { challenge: string },
    o: ClientDataOverrides & { rpId?: string; flags?: number; counter?: number; userHandle?: string | null } = {},
  ) {
    this.counter = o.counter ?? this.counter + 1;
    const clientDataJSON = text(JSON.stringify({ type: o.type ?? 'webauthn.get', challenge: o.challenge ?? options.challenge, origin: o.origin ?? PUBLIC_URL, crossOrigin: false }));
    const authData = await this.authData(o.flags ?? FLAGS.UP | FLAGS.UV, false, o.rpId);
    const signed = concat(authData, await sha256(clientDataJSON));
    const raw = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, this.keys.privateKey, signed));
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
      response: {
        clientDataJSON: b64u(clientDataJSON),
        authenticatorData: b64u(authData),
        signature: b64u(derSignature(raw)),
        userHandle: o.userHandle === undefined ? this.userHandle : o.userHandle,
      },
    };
  }
}

/** POST a JSON body to a passkey endpoint. */
export async function postJson(path: string, json: unknown, opts: CallOptions = {}) {
  const r = await call(path, { ...opts, method: 'POST', json });
  const body = r.headers.get('content-type')?.includes('json') ? await r.json<Record<string, unknown>>() : null;
  return { status: r.status, body, response: r };
}

export interface RegistrationOptions {
  challenge: string;
  rp: { id: string; name: string };
  user: { id: string; name: string; displayName: string };
  excludeCredentials?: { id: string; type: string }[];
  authenticatorSelection?: { residentKey?: string; userVerification?: string; requireResidentKey?: boolean };
  attestation?: string;
  timeout?: number;
}

export interface AuthenticationOptions {
  challenge: string;
  rpId: string;
  allowCredentials?: { id: string }[];
  userVerification?: string;
}

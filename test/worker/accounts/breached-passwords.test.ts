import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { call, makeEnv, stateSnapshot, uniqueEmail } from '../support/helpers';

// A fake Pwned Passwords range API at the fetch level: nothing reaches a network.
const BREACHED = 'a breached passphrase, long enough';
const CLEAN = 'a passphrase nobody has leaked yet';
type Mode = 'answer' | 'down' | 'refuse-connection' | 'garbage';
let mode: Mode = 'answer';
let requests: { url: string; headers: Headers }[] = [];

async function sha1Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-1', new TextEncoder().encode(text)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();
}

beforeEach(() => {
  mode = 'answer';
  requests = [];
  vi.stubGlobal('fetch', async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    requests.push({ url: request.url, headers: request.headers });
    const url = new URL(request.url);
    if (url.origin !== 'https://api.pwnedpasswords.com') throw new TypeError(`fake network: no host for ${request.url}`);
    if (mode === 'refuse-connection') throw new TypeError('connection refused');
    if (mode === 'down') return new Response('busy', { status: 503 });
    if (mode === 'garbage') return new Response('<html>maintenance</html>', { status: 200 });
    const prefix = url.pathname.replace('/range/', '');
    const lines = ['0018A45C4D1DEF81644B54AB7F969B88D65:1', '00D4F6E8FA6EECAD2A3AA415EEC418D38EC:2'];
    const breached = await sha1Hex(BREACHED);
    const clean = await sha1Hex(CLEAN);
    if (breached.startsWith(prefix)) lines.push(`${breached.slice(5)}:3861493`);
    if (clean.startsWith(prefix)) lines.push(`${clean.slice(5)}:0`); // a padding decoy with the clean suffix
    return new Response(lines.join('\r\n'), { status: 200, headers: { 'content-type': 'text/plain' } });
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

async function register(password: string, setting?: string) {
  const env = makeEnv(setting === undefined ? {} : { BREACHED_PASSWORD_CHECK: setting });
  const r = await call('/auth/register', { json: { email: uniqueEmail('breach'), password }, env });
  return { status: r.status, body: (await r.json()) as { error?: string; error_description?: string } };
}

describe('BREACHED_PASSWORD_CHECK (Pwned Passwords range API, k-anonymity)', () => {
  it('is off by default: nothing is sent anywhere', async () => {
    expect((await register(BREACHED)).status).toBe(201);
    expect(requests).toEqual([]);
  });

  it('required: refuses a breached password with 400, sending only the 5-character SHA-1 prefix, padded', async () => {
    const before = await stateSnapshot();
    const { status, body } = await register(BREACHED, 'required');
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(/appeared in a data breach/) });
    expect(await stateSnapshot()).toEqual(before);
    const hash = await sha1Hex(BREACHED);
    expect(requests.map((r) => r.url)).toEqual([`https://api.pwnedpasswords.com/range/${hash.slice(0, 5)}`]);
    expect(requests[0]!.headers.get('add-padding')).toBe('true');
  });

  it('required: accepts a password the API does not list, and ignores zero-count padding entries', async () => {
    expect((await register(CLEAN, 'required')).status).toBe(201);
    expect(requests).toHaveLength(1);
  });

  it.each(['down', 'refuse-connection', 'garbage'] as const)('required: fails closed with 503 when the API is %s, storing nothing', async (fault) => {
    mode = fault;
    const errors = vi.spyOn(console, 'error');
    const before = await stateSnapshot();
    const { status, body } = await register(CLEAN, 'required');
    expect(status).toBe(503);
    expect(body.error).toBe('unavailable');
    expect(await stateSnapshot()).toEqual(before);
    expect(errors.mock.calls.some(([line]) => String(line).includes('"breached_password_check_failed"'))).toBe(true);
  });

  it('best-effort: lets the registration through with a log line when the API is down', async () => {
    mode = 'down';
    const warnings = vi.spyOn(console, 'warn');
    expect((await register(CLEAN, 'best-effort')).status).toBe(201);
    const line = warnings.mock.calls.map(([l]) => String(l)).find((l) => l.includes('"breached_password_check_failed"'));
    expect(JSON.parse(line!)).toMatchObject({ level: 'warn', outcome: 'allowed', reason: 'status 503' });
  });

  it('best-effort still refuses a password the API does list', async () => {
    expect((await register(BREACHED, 'best-effort')).status).toBe(400);
  });

  it('refuses an unknown setting value, naming the setting', async () => {
    const r = await call('/auth/health', { env: makeEnv({ BREACHED_PASSWORD_CHECK: 'sometimes' }) });
    expect(r.status).toBe(500);
    expect(await r.text()).toMatch(/BREACHED_PASSWORD_CHECK/);
  });
});

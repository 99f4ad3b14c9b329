/**
 * `@gatehouse/verify` as an origin gets it: packed as `npm publish` would pack it (the dist/ the
 * e2e global setup built), installed from the tarball into a fresh folder with npm, and README's
 * two examples ("What origins receive") read from README itself and run from that folder: the
 * Node origin as a real `node` process, the Hono origin through its `fetch`. Their assertions are
 * minted by the gateway's own signer (tokens/assertion.ts) with a real key, for the examples'
 * own gateway and audience; the examples' JWKS URL (https://auth.example.com) is answered with
 * that key's JWKS by a stand-in for `fetch`, so README's code runs as printed.
 *
 * The install is offline: the package's dependency and peers (valibot, jose, hono) are `file:`
 * links to this repository's node_modules, the one thing a registry would have added.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { JWK } from 'jose';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { gatehouse, type GatehouseOrServiceVariables } from '@gatehouse/verify/hono';
import type { AuthUser, ServiceCaller } from '../../src/env';
import { generateSigningJwk, keyringFromJwks, type Keyring } from '../../src/keys/keyring';
import { assertionFor } from '../../src/tokens/assertion';
import { serviceAssertionFor } from '../../src/tokens/service-assertion';
import { freePort } from './harness';

/** What README's examples are written for. */
const GATEWAY = 'https://auth.example.com';
const JWKS_URL = `${GATEWAY}/.well-known/jwks.json`;
const AUDIENCE = 'https://app.internal.example.com';

/** The fenced code block after README's `<!-- example: <name> … -->` marker. */
function readmeExample(name: string): string {
  const readme = readFileSync(resolve('README.md'), 'utf8');
  const at = readme.indexOf(`<!-- example: ${name} `);
  expect(at, `README has the marker of the ${name} example`).toBeGreaterThan(-1);
  const block = /```\w*\n([\s\S]*?)\n```/.exec(readme.slice(at));
  expect(block, `a code block follows the ${name} marker`).not.toBeNull();
  return `${block![1]!}\n`;
}

const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const now = () => Math.floor(Date.now() / 1000);
let sequence = 0;
function person(): AuthUser {
  const n = ++sequence;
  return {
    id: `usr_${n}`,
    email: `ada${n}@example.com`,
    emailVerified: true,
    roles: ['ops'],
    groups: ['eng'],
    groupsKnown: true,
    sessionId: `ses_${n}`,
    tokenId: `jti_${n}`,
    tokenExpiresAt: now() + 600,
    issuedAt: now(),
    amr: ['pwd'],
    authTime: now(),
  };
}
function service(): ServiceCaller {
  const n = ++sequence;
  return { kind: 'service', clientId: `cli_${n}`, sessionId: `svc:cli_${n}:0`, scope: 'reports:read', tokenId: `jti_${n}`, tokenExpiresAt: now() + 600 };
}

let consumer = '';
let ring: Keyring;
/** A key of the same `kid` that the gateway never published. */
let forger: Keyring;
let jwks = '';

beforeAll(async () => {
  const jwk = await generateSigningJwk();
  ring = await keyringFromJwks({ keys: [jwk] });
  forger = await keyringFromJwks({ keys: [{ ...(await generateSigningJwk()), kid: jwk.kid } satisfies JWK] });
  jwks = JSON.stringify(ring.jwks);

  // A fresh project under the git-ignored .wrangler/, installing the packed tarball.
  mkdirSync(resolve('.wrangler'), { recursive: true });
  consumer = mkdtempSync(resolve('.wrangler', 'verify-consumer-'));
  const packed = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', consumer], inject('verifyPackage'))) as { filename: string }[];
  const repoModule = (name: string) => resolve('node_modules', name);
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify({
      name: 'an-origin',
      private: true,
      type: 'module',
      dependencies: {
        '@gatehouse/verify': `file:${packed[0]!.filename}`,
        jose: `file:${repoModule('jose')}`,
        valibot: `file:${repoModule('valibot')}`,
        hono: `file:${repoModule('hono')}`,
      },
    }),
  );
  npm(['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock'], consumer);
});

afterAll(() => {
  if (consumer) rmSync(consumer, { recursive: true, force: true });
});

describe('the published package', () => {
  it('packs the built JavaScript and its declarations, and nothing else', () => {
    const [pack] = JSON.parse(npm(['pack', '--dry-run', '--ignore-scripts', '--json'], inject('verifyPackage'))) as { files: { path: string }[] }[];
    const files = pack!.files.map((f) => f.path).sort();
    expect(files).toEqual(['README.md', 'dist/hono.d.ts', 'dist/hono.js', 'dist/index.d.ts', 'dist/index.js', 'package.json']);
  });

  it('resolves both entries through its exports map in Node, as ES modules, from the installed tarball', () => {
    const script = "const m = await import('@gatehouse/verify'); const h = await import('@gatehouse/verify/hono'); console.log(JSON.stringify([import.meta.resolve('@gatehouse/verify'), Object.keys(m).sort(), Object.keys(h)]));";
    const [where, main, hono] = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: consumer, encoding: 'utf8' })) as [string, string[], string[]];
    expect(where).toBe(pathToFileURL(join(consumer, 'node_modules/@gatehouse/verify/dist/index.js')).href);
    expect(main).toEqual(['ASSERTION_HEADER', 'BACKCHANNEL_LOGOUT_EVENT', 'GatehouseAssertionError', 'LOGOUT_TOKEN_TYPE', 'verifyGatehouseAssertion', 'verifyGatehouseLogoutToken']);
    expect(hono).toEqual(['gatehouse']);
  });

  it('gives TypeScript its declarations through the exports map: README\'s Hono example type-checks, the identity typed', () => {
    writeFileSync(join(consumer, 'hono-origin.ts'), readmeExample('hono-origin'));
    // Misuses the declarations must catch: the identity's email is a string, in the function's answer and in the context.
    writeFileSync(
      join(consumer, 'misuse.ts'),
      [
        "import { Hono } from 'hono';",
        "import { verifyGatehouseAssertion } from '@gatehouse/verify';",
        "import { gatehouse, type GatehouseVariables } from '@gatehouse/verify/hono';",
        "export const fromFunction: number = (await verifyGatehouseAssertion(new Request('https://x/'), { jwksUrl: 'https://a/', audience: 'b' })).email;",
        "const app = new Hono<{ Variables: GatehouseVariables }>().use(gatehouse({ jwksUrl: 'https://a/', audience: 'b' }));",
        "app.get('/', (c) => { const fromContext: number = c.get('gatehouse').email; return c.text(String(fromContext)); });",
        '',
      ].join('\n'),
    );
    const compilerOptions = { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'], types: [], strict: true, noEmit: true };
    const tsc = join(dirname(createRequire(resolve('package.json')).resolve('typescript/package.json')), 'bin', 'tsc');
    const check = (file: string) => {
      writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: [file] }));
      try {
        execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: consumer, encoding: 'utf8' });
        return '';
      } catch (e) {
        return String((e as { stdout?: string }).stdout ?? e);
      }
    };
    expect(check('hono-origin.ts')).toBe('');
    const errors = check('misuse.ts').match(/^misuse\.ts\(\d+,\d+\): error TS\d+: .*$/gm);
    expect(errors).toEqual([
      "misuse.ts(4,14): error TS2322: Type 'string' is not assignable to type 'number'.",
      "misuse.ts(6,29): error TS2322: Type 'string' is not assignable to type 'number'.",
    ]);
  });
});

/** Every case an origin must tell apart: the assertion to send (none for `missing`) and the answer. */
async function cases(): Promise<{ name: string; assertion: string | null; status: number; body: Record<string, unknown> }[]> {
  const ada = person();
  return [
    { name: 'a valid assertion', assertion: await assertionFor(ring, GATEWAY, ada, AUDIENCE), status: 200, body: { hello: ada.email, roles: ['ops'] } },
    { name: 'no assertion', assertion: null, status: 401, body: { error: 'unauthorized', error_description: expect.stringContaining('No X-Auth-Assertion header') } },
    { name: 'a forged assertion (a key the gateway never published, its kid)', assertion: await assertionFor(forger, GATEWAY, person(), AUDIENCE), status: 401, body: { error: 'unauthorized', error_description: expect.stringContaining('ERR_JWS_SIGNATURE_VERIFICATION_FAILED') } },
    { name: 'an expired assertion', assertion: await assertionFor(ring, GATEWAY, person(), AUDIENCE, now() - 120), status: 401, body: { error: 'unauthorized', error_description: expect.stringContaining('ERR_JWT_EXPIRED') } },
    { name: 'an assertion for another audience', assertion: await assertionFor(ring, GATEWAY, person(), 'https://other.internal.example.com'), status: 401, body: { error: 'unauthorized', error_description: expect.stringContaining('ERR_JWT_CLAIM_VALIDATION_FAILED') } },
    { name: 'an assertion of another issuer', assertion: await assertionFor(ring, 'https://elsewhere.example.com', person(), AUDIENCE), status: 401, body: { error: 'unauthorized', error_description: expect.stringContaining('ERR_JWT_CLAIM_VALIDATION_FAILED') } },
    { name: 'a service\'s assertion (not accepted unless asked for)', assertion: await serviceAssertionFor(ring, GATEWAY, service(), AUDIENCE), status: 401, body: { error: 'unauthorized', error_description: expect.stringContaining('acceptServices') } },
  ];
}

describe("README's Node origin, run by node from the installed package", () => {
  let origin: ChildProcess | undefined;
  let url = '';
  let output = '';

  beforeAll(async () => {
    writeFileSync(join(consumer, 'node-origin.mjs'), readmeExample('node-origin'));
    // The examples' gateway, answered from here: only its JWKS URL, every other request goes out.
    writeFileSync(
      join(consumer, 'gateway-jwks.mjs'),
      `const real = globalThis.fetch;\nglobalThis.fetch = (input, init) => String(input instanceof Request ? input.url : input) === ${JSON.stringify(JWKS_URL)} ? Promise.resolve(new Response(process.env.GATEWAY_JWKS, { headers: { 'content-type': 'application/json' } })) : real(input, init);\n`,
    );
    const port = await freePort();
    url = `http://127.0.0.1:${port}/`;
    origin = spawn(process.execPath, ['--import', './gateway-jwks.mjs', 'node-origin.mjs'], { cwd: consumer, env: { ...process.env, PORT: String(port), GATEWAY_JWKS: jwks }, stdio: ['ignore', 'pipe', 'pipe'] });
    origin.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    origin.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    // Listening once it answers (401: the probe carries no assertion).
    for (const deadline = Date.now() + 10_000; ; ) {
      const status = await fetch(url).then((r) => r.status, () => 0);
      if (status === 401) break;
      if (Date.now() > deadline || origin.exitCode !== null) throw new Error(`README's Node origin did not start (last answer ${status}): ${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  afterAll(() => {
    origin?.kill();
  });

  it('answers each assertion as README says: the identity for a valid one, 401 with the reason for every other', async () => {
    for (const c of await cases()) {
      const res = await fetch(url, { headers: c.assertion === null ? {} : { 'x-auth-assertion': c.assertion } });
      expect({ name: c.name, status: res.status, body: await res.json() }, output).toEqual({ name: c.name, status: c.status, body: c.body });
    }
  });
});

describe("README's Hono origin (Workers), from the installed package", () => {
  let app: { fetch(request: Request): Response | Promise<Response> };

  beforeAll(async () => {
    vi.stubGlobal('fetch', async (input: RequestInfo | URL) => {
      const href = input instanceof Request ? input.url : String(input);
      if (href !== JWKS_URL) throw new Error(`unexpected fetch of ${href}`);
      return new Response(jwks, { headers: { 'content-type': 'application/json' } });
    });
    const file = join(consumer, 'hono-worker.ts');
    writeFileSync(file, readmeExample('hono-origin'));
    ({ default: app } = (await import(/* @vite-ignore */ pathToFileURL(file).href)) as { default: typeof app });
  });

  afterAll(() => {
    vi.unstubAllGlobals();
  });

  it('lets only a valid assertion through to the handler, with the identity set; 401 JSON for every other', async () => {
    for (const c of await cases()) {
      const res = await app.fetch(new Request('https://app.internal.example.com/', { headers: c.assertion === null ? {} : { 'x-auth-assertion': c.assertion } }));
      expect({ name: c.name, status: res.status, body: await res.json() }).toEqual({ name: c.name, status: c.status, body: c.body });
      if (c.status === 401) expect(res.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('takes its options from the context (a Worker\'s bindings), and lets a service through when asked, telling it apart', async () => {
    const bindings = { GATEHOUSE_JWKS_URL: JWKS_URL, AUDIENCE: 'https://reports.internal.example.com' };
    const reports = new Hono<{ Bindings: typeof bindings; Variables: GatehouseOrServiceVariables }>();
    reports.use(gatehouse((c) => ({ jwksUrl: c.env.GATEHOUSE_JWKS_URL, audience: c.env.AUDIENCE, acceptServices: true })));
    reports.get('/', (c) => {
      const who = c.get('gatehouse');
      return c.json(who.kind === 'service' ? { service: who.clientId, scope: who.scope } : { person: who.email });
    });
    const ask = (assertion: string) => reports.fetch(new Request('https://reports.internal.example.com/', { headers: { 'x-auth-assertion': assertion } }), bindings);

    const caller = service();
    const asService = await ask(await serviceAssertionFor(ring, GATEWAY, caller, bindings.AUDIENCE));
    expect(await asService.json()).toEqual({ service: caller.clientId, scope: ['reports:read'] });
    const ada = person();
    expect(await (await ask(await assertionFor(ring, GATEWAY, ada, bindings.AUDIENCE))).json()).toEqual({ person: ada.email });
    // The audience is the bindings', not README's.
    const misdirected = await ask(await assertionFor(ring, GATEWAY, person(), AUDIENCE));
    expect(misdirected.status).toBe(401);
  });
});

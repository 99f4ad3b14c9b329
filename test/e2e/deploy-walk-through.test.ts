/**
 * `npm run deploy` (scripts/deploy.mjs): the walk-through of a deployment. There is no
 * Cloudflare account here, so wrangler is test/e2e/deploy/fake-wrangler.mjs, put first on PATH
 * the way npm puts node_modules/.bin there: an account kept in a JSON file, answering in real
 * wrangler's output shapes and recording every call. What wrangler can do locally it does for
 * real: the walk-through's `--local` applies the migrations with the real wrangler (the fake
 * hands every `--local` command to it) to a local D1 this test then reads.
 *
 * The walk-through runs in this process (`deploy()`, the function the script's command line
 * calls; wrangler's config reader is loaded once), with a piped stdin and stdout, so it has no
 * terminal; one refusal runs the script itself to pin its exit code.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy } from '../../scripts/deploy.mjs';
import { parseConfig } from '../../src/config/load';
import { keyringFromJwks } from '../../src/keys/keyring';
import { ROOT } from './harness';

const FAKE = join(ROOT, 'test', 'e2e', 'deploy', 'fake-wrangler.mjs');
const REAL = join(ROOT, 'node_modules', '.bin', 'wrangler');
const PUBLIC_URL = 'https://auth.example.com';
const MIGRATIONS = readdirSync(join(ROOT, 'migrations')).filter((f) => f.endsWith('.sql')).sort();

interface Account {
  calls: { args: string[]; ci: string | null }[];
  databases: { uuid: string; name: string }[];
  namespaces: { id: string; title: string }[];
  queues: { queue_name: string; queue_id: string }[];
  secrets: Record<string, string[]>;
  uploaded?: Record<string, string>;
  /** When set, `secret list` fails with this message (an API fault, not a missing Worker). */
  secretListError?: string;
}

interface Run {
  code: number | null;
  out: string;
  error: string;
}

const projects: string[] = [];
afterAll(() => {
  for (const dir of projects) rmSync(dir, { recursive: true, force: true });
});

/** A copy of this repository's wrangler.toml (edited by `edit`) in a folder of its own, with an empty account. */
function project(edit: (toml: string) => string = (t) => t) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-deploy-'));
  projects.push(dir);
  writeFileSync(join(dir, 'wrangler.toml'), edit(readFileSync(join(ROOT, 'wrangler.toml'), 'utf8')));
  symlinkSync(join(ROOT, 'migrations'), join(dir, 'migrations'));
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'wrangler'), `#!/bin/sh\nexec "${process.execPath}" "${FAKE}" "$@"\n`, { mode: 0o755 });
  const accountFile = join(dir, 'account.json');
  writeFileSync(accountFile, JSON.stringify({ calls: [], databases: [], namespaces: [], queues: [], secrets: {} }));
  const env = { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}`, FAKE_WRANGLER_STATE: accountFile, FAKE_WRANGLER_REAL: REAL, CI: 'true' };
  return {
    dir,
    env,
    account: (): Account => JSON.parse(readFileSync(accountFile, 'utf8')) as Account,
    /**
     * The walk-through with these flags: with no terminal and CI=true, or given `answers`, on a
     * terminal (CI unset) where each answer is typed once its question (the key) is printed.
     */
    async run(argv: string[], answers?: Record<string, string>): Promise<Run> {
      const stdout = Object.assign(new PassThrough(), { isTTY: Boolean(answers) });
      const stdin = Object.assign(new PassThrough(), { isTTY: Boolean(answers) });
      let out = '';
      const pending = new Map(Object.entries(answers ?? {}));
      stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        for (const [question, answer] of pending) {
          if (!out.includes(question)) continue;
          pending.delete(question);
          stdin.write(`${answer}\n`);
        }
      });
      if (!answers) stdin.end();
      try {
        const code = await deploy(argv, { stdin, stdout, env: answers ? { ...env, CI: undefined } : env, cwd: dir });
        return { code, out, error: '' };
      } catch (e) {
        if (!(e instanceof Error) || e.name !== 'DeployError') throw e;
        return { code: null, out, error: e.message };
      }
    },
  };
}

const commands = (account: Account) => account.calls.map((c) => c.args.join(' '));
const LOOK_UPS = ['d1 list --json', 'kv namespace list', 'queues info gatehouse-logout-notices', 'queues info gatehouse-logout-notices-dead', 'secret list --name gatehouse'];

describe('a dry run', () => {
  it('looks everything up, prints each command it would run and what is left, and changes nothing', async () => {
    const p = project();
    const run = await p.run(['--dry-run', '--public-url', PUBLIC_URL]);
    expect(run.error).toBe('');
    expect(run.code).toBe(0);
    expect(commands(p.account())).toEqual(LOOK_UPS);
    const wouldRun = run.out.slice(run.out.indexOf('Would run:'), run.out.indexOf('Dry run:'));
    expect(wouldRun.split('\n').slice(1, -2)).toEqual([
      '  wrangler d1 create gatehouse',
      '  wrangler kv namespace create gatehouse-revoked',
      '  wrangler queues create gatehouse-logout-notices',
      '  wrangler queues create gatehouse-logout-notices-dead',
      '  wrangler secret put SIGNING_KEYS --name gatehouse',
      '  (write wrangler.production.jsonc: wrangler.toml with the ids above and PUBLIC_URL)',
      '  wrangler d1 migrations apply DB --remote --config wrangler.production.jsonc',
      '  wrangler deploy --config wrangler.production.jsonc',
    ]);
    expect(run.out).toContain('Durable Object migrations: present (UserSessions)');
    const left = run.out.slice(run.out.indexOf('Left to do:'));
    expect(left).toMatch(/- mail: wrangler secret put SMTP_URL/);
    expect(left).toMatch(/- no sign-in provider configured/);
    expect(left).toMatch(/- SCIM_TOKEN \(optional\)/);
    expect(left).toContain('- routes: the Worker answers on workers.dev only; give it PUBLIC_URL\'s host as a custom domain (routes = [{ pattern = "auth.example.com", custom_domain = true }])');
    expect(existsSync(join(p.dir, 'wrangler.production.jsonc'))).toBe(false);
    expect(p.account()).toMatchObject({ databases: [], namespaces: [], queues: [], secrets: {} });
  });
});

describe('a first deployment, then a second', () => {
  const p = project((toml) =>
    toml.replace('name = "gatehouse"\n', 'name = "gatehouse"\nroutes = [{ pattern = "auth.example.com", custom_domain = true }]\n').replace('[vars]\n', '[vars]\nGITHUB_CLIENT_ID = "Iv1.example"\n'),
  );
  const state = join(p.dir, 'local-state');
  let first: Run;
  let afterFirst: Account;
  let written: { vars: Record<string, string>; d1_databases: { binding: string; database_id: string }[]; kv_namespaces: { binding: string; id: string }[] };

  beforeAll(async () => {
    first = await p.run(['--public-url', PUBLIC_URL, '--yes', '--local', '--persist-to', state]);
    afterFirst = p.account();
    const text = readFileSync(join(p.dir, 'wrangler.production.jsonc'), 'utf8');
    written = JSON.parse(text.replace(/^(\s*\/\/[^\n]*\n)+/, '')) as typeof written;
  });

  it('creates what is missing, then uploads the key, migrates and deploys, in that order', () => {
    expect(first.error).toBe('');
    expect(first.code).toBe(0);
    expect(commands(afterFirst)).toEqual([
      ...LOOK_UPS,
      'd1 create gatehouse',
      'd1 list --json',
      'kv namespace create gatehouse-revoked',
      'kv namespace list',
      'queues create gatehouse-logout-notices',
      'queues create gatehouse-logout-notices-dead',
      'secret put SIGNING_KEYS --name gatehouse',
      `d1 migrations apply DB --local --persist-to ${state} --config wrangler.production.jsonc`,
      'deploy --config wrangler.production.jsonc',
    ]);
    expect(afterFirst.queues.map((q) => q.queue_name)).toEqual(['gatehouse-logout-notices', 'gatehouse-logout-notices-dead']);
  });

  it('writes the ids and PUBLIC_URL to wrangler.production.jsonc and leaves wrangler.toml as it was', () => {
    expect(written.d1_databases.find((d) => d.binding === 'DB')?.database_id).toBe(afterFirst.databases[0]!.uuid);
    expect(written.kv_namespaces.find((k) => k.binding === 'REVOKED')?.id).toBe(afterFirst.namespaces[0]!.id);
    expect(afterFirst.namespaces[0]!.title).toBe('gatehouse-revoked');
    expect(written.vars).toMatchObject({ ENVIRONMENT: 'production', PUBLIC_URL });
    const toml = readFileSync(join(p.dir, 'wrangler.toml'), 'utf8');
    expect(toml).toContain('database_id = "00000000-0000-0000-0000-000000000000"');
    expect(toml).not.toMatch(/^PUBLIC_URL = /m);
  });

  it('uploads a fresh signing key the deployed settings accept, on stdin only: never printed, never left in a file', async () => {
    const uploaded = afterFirst.uploaded?.SIGNING_KEYS ?? '';
    const ring = await keyringFromJwks(JSON.parse(uploaded));
    expect(ring.active.alg).toBe('ES256');
    const d = (JSON.parse(uploaded) as { keys: { d: string }[] }).keys[0]!.d;
    expect(first.out).not.toContain(d);
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        if (path === join(p.dir, 'migrations') || path === join(p.dir, 'account.json')) return [];
        return statSync(path).isDirectory() ? files(path) : [path];
      });
    for (const file of files(p.dir)) expect(readFileSync(file).includes(d), file).toBe(false);
    // The provider's secret is the operator's to set (the summary says so).
    const parsed = parseConfig({ ...written.vars, GITHUB_CLIENT_SECRET: 'set-by-the-operator', SIGNING_KEYS: uploaded });
    expect(parsed.ok ? parsed.config.isDevelopment : parsed.error.message).toBe(false);
  });

  it('applies every migration with the real wrangler to its local D1', () => {
    const d1 = join(state, 'v3', 'd1', 'miniflare-D1DatabaseObject');
    const sqlite = readdirSync(d1).filter((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite');
    expect(sqlite).toHaveLength(1);
    const db = new DatabaseSync(join(d1, sqlite[0]!), { readOnly: true });
    const applied = db.prepare('SELECT name FROM d1_migrations ORDER BY id').all().map((r) => r.name);
    db.close();
    expect(applied).toEqual(MIGRATIONS);
  });

  it('prints what it did and what is left: the provider secret, mail', () => {
    const done = first.out.slice(first.out.indexOf('Done:'), first.out.indexOf('Left to do:'));
    expect(done).toContain(`created the D1 database "gatehouse" (${afterFirst.databases[0]!.uuid})`);
    expect(done).toContain('uploaded a new signing key as SIGNING_KEYS');
    expect(done).toContain('deployed Worker "gatehouse"');
    const left = first.out.slice(first.out.indexOf('Left to do:'));
    expect(left).toContain('GITHUB_CLIENT_ID is set: wrangler secret put GITHUB_CLIENT_SECRET --name gatehouse');
    expect(left).toMatch(/- mail: /);
    expect(left).not.toMatch(/no sign-in provider/);
    expect(left).not.toMatch(/- routes:/);
  });

  it('a second run finds everything, keeps the key and PUBLIC_URL, and only migrates and deploys', async () => {
    const second = await p.run(['--yes', '--local', '--persist-to', state]);
    expect(second.error).toBe('');
    expect(second.code).toBe(0);
    const account = p.account();
    expect(commands(account).slice(afterFirst.calls.length)).toEqual([
      ...LOOK_UPS,
      `d1 migrations apply DB --local --persist-to ${state} --config wrangler.production.jsonc`,
      'deploy --config wrangler.production.jsonc',
    ]);
    expect(second.out).toContain(`D1 database "gatehouse": found (${afterFirst.databases[0]!.uuid})`);
    expect(second.out).toContain('Secret SIGNING_KEYS: set already (kept)');
    expect(second.out).toMatch(/No migrations to apply/);
    expect(account.uploaded).toEqual(afterFirst.uploaded);
    expect(account.databases).toEqual(afterFirst.databases);
    const again = JSON.parse(readFileSync(join(p.dir, 'wrangler.production.jsonc'), 'utf8').replace(/^(\s*\/\/[^\n]*\n)+/, '')) as typeof written;
    expect(again).toEqual(written);
  });
});

describe('a development configuration is refused before anything is looked up or created', () => {
  it.each([
    ['an http PUBLIC_URL', (t: string) => t, 'http://auth.example.com', /PUBLIC_URL http:\/\/auth\.example\.com does not use https/],
    ['a local PUBLIC_URL', (t: string) => t, 'https://localhost:8787', /PUBLIC_URL https:\/\/localhost:8787 is a local address/],
    ['a local PUBLIC_URL spelt with a trailing dot', (t: string) => t, 'https://localhost.', /is a local address \(localhost\.\)/],
    ['a loopback PUBLIC_URL in short form', (t: string) => t, 'https://127.1', /is a local address \(127\.0\.0\.1\)/],
    ['an IPv4-mapped IPv6 loopback PUBLIC_URL', (t: string) => t, 'https://[::ffff:127.0.0.1]', /is a local address/],
    ['the unspecified IPv6 address', (t: string) => t, 'https://[::]', /is a local address/],
    ['a private-network PUBLIC_URL', (t: string) => t, 'https://10.0.0.1', /is a local address \(10\.0\.0\.1\)/],
    ['a PUBLIC_URL with a user and password', (t: string) => t, 'https://admin:hunter2@auth.example.com', /is not an origin: write https:\/\/auth\.example\.com/],
    ['a PUBLIC_URL with a query', (t: string) => t, 'https://auth.example.com?next=/', /is not an origin: write https:\/\/auth\.example\.com/],
    ['a PUBLIC_URL whose host ends with a dot', (t: string) => t, 'https://auth.example.com.', /host ends with a dot: write https:\/\/auth\.example\.com/],
    ['a PUBLIC_URL with a look-alike unicode host', (t: string) => t, 'https://\u0430uth.example.com', /is not an origin: write https:\/\/xn--/],
    ['a PUBLIC_URL with a fragment', (t: string) => t, 'https://auth.example.com#x', /is not an origin: write https:\/\/auth\.example\.com/],
    ['the dev sign-in provider', (t: string) => t.replace('[vars]\n', '[vars]\nDEV_OIDC_ISSUER = "http://127.0.0.1:8788"\n'), PUBLIC_URL, /DEV_OIDC_ISSUER is set/],
    ['an http OIDC_ISSUER written in capitals', (t: string) => t.replace('[vars]\n', '[vars]\nOIDC_ISSUER = "HTTP://idp.example.com"\nOIDC_CLIENT_ID = "gatehouse"\n'), PUBLIC_URL, /OIDC_ISSUER uses http/],
    ['ENVIRONMENT=development', (t: string) => t.replace('ENVIRONMENT = "production"', 'ENVIRONMENT = "development"'), PUBLIC_URL, /ENVIRONMENT is "development"/],
    ['a signing key in [vars]', (t: string) => t.replace('[vars]\n', `[vars]\nSIGNING_KEYS = '{"keys":[]}'\n`), PUBLIC_URL, /SIGNING_KEYS is in \[vars\]/],
    ['a Durable Object without its migration', (t: string) => t.replace(/\[\[migrations\]\][\s\S]*?renamed_classes[^\n]*\n/, ''), PUBLIC_URL, /Durable Object USER_SESSIONS: no \[\[migrations\]\] entry creates class UserSessions/],
  ])('%s', async (_name, edit, publicUrl, reason) => {
    const p = project(edit);
    const run = await p.run(['--public-url', publicUrl, '--yes']);
    expect(run.code).toBeNull();
    expect(run.error).toMatch(/^Refusing to deploy a development configuration/);
    expect(run.error).toMatch(reason);
    expect(run.error).toMatch(/Nothing was created or changed\.$/);
    expect(p.account().calls).toEqual([]);
    expect(existsSync(join(p.dir, 'wrangler.production.jsonc'))).toBe(false);
  });
});

describe('on a terminal it asks', () => {
  it('for PUBLIC_URL, then whether to go ahead: "n" stops with nothing created', async () => {
    const p = project();
    const run = await p.run([], { '(PUBLIC_URL)': PUBLIC_URL, 'Go ahead? [y/N]': 'n' });
    expect(run.error).toBe('Stopped: nothing was changed.');
    expect(run.out).toContain(`Deploying Worker "gatehouse" at ${PUBLIC_URL}`);
    expect(commands(p.account())).toEqual(LOOK_UPS);
    expect(existsSync(join(p.dir, 'wrangler.production.jsonc'))).toBe(false);
  });
});

describe('ids already in wrangler.toml', () => {
  it('are looked up by id: found, nothing created; an id the account does not have is refused', async () => {
    const id = '5e1f0c3a-1111-4222-8333-944445555666';
    const p = project((t) => t.replace('00000000-0000-0000-0000-000000000000', id));
    const account = p.account();
    writeFileSync(p.env.FAKE_WRANGLER_STATE, JSON.stringify({ ...account, databases: [{ uuid: id, name: 'users-db' }] }));
    const found = await p.run(['--dry-run', '--public-url', PUBLIC_URL]);
    expect(found.out).toContain(`D1 database "users-db": found (${id})`);
    expect(found.out).not.toContain('wrangler d1 create');
    writeFileSync(p.env.FAKE_WRANGLER_STATE, JSON.stringify({ ...account, databases: [{ uuid: randomUUID(), name: 'gatehouse' }] }));
    const missing = await p.run(['--dry-run', '--public-url', PUBLIC_URL]);
    expect(missing.error).toContain(`D1 database_id ${id} (binding DB) is not in this account`);
  });
});

describe('the signing key already set', () => {
  it('is never replaced when the secret list fails for another reason than a missing Worker', async () => {
    const p = project();
    const account = p.account();
    const error = 'A request to the Cloudflare API (/accounts/abc/workers/scripts/gatehouse/secrets) failed.\n  Not found [code: 7003]';
    writeFileSync(p.env.FAKE_WRANGLER_STATE, JSON.stringify({ ...account, secrets: { gatehouse: ['SIGNING_KEYS'] }, secretListError: error }));
    const run = await p.run(['--public-url', PUBLIC_URL, '--yes']);
    expect(run.error).toContain('wrangler secret list --name gatehouse failed (exit 1)');
    expect(commands(p.account())).toEqual(LOOK_UPS);
    expect(p.account().uploaded).toBeUndefined();
  });
});

describe('--env', () => {
  const STAGING = `
[env.staging]
vars = { ENVIRONMENT = "production", PUBLIC_URL = "https://staging.example.com" }
d1_databases = [{ binding = "DB", database_name = "gatehouse-staging", database_id = "00000000-0000-0000-0000-000000000000", migrations_dir = "migrations" }]
kv_namespaces = [{ binding = "REVOKED", id = "00000000000000000000000000000000" }]
`;

  it("deploys that environment's Worker with its own resources, written into its section only", async () => {
    const p = project((t) => `${t}${STAGING}`);
    const run = await p.run(['--env', 'staging', '--yes']);
    expect(run.error).toBe('');
    expect(run.out).toContain('Deploying Worker "gatehouse-staging" at https://staging.example.com');
    const account = p.account();
    expect(commands(account)).toEqual([
      'd1 list --json',
      'kv namespace list',
      'secret list --name gatehouse-staging',
      'd1 create gatehouse-staging',
      'd1 list --json',
      'kv namespace create gatehouse-staging-revoked',
      'kv namespace list',
      'secret put SIGNING_KEYS --name gatehouse-staging',
      'd1 migrations apply DB --remote --config wrangler.production.jsonc --env staging',
      'deploy --config wrangler.production.jsonc --env staging',
    ]);
    const written = JSON.parse(readFileSync(join(p.dir, 'wrangler.production.jsonc'), 'utf8').replace(/^(\s*\/\/[^\n]*\n)+/, '')) as {
      vars: Record<string, string>;
      d1_databases: { database_id: string }[];
      env: { staging: { d1_databases: { database_id: string }[]; kv_namespaces: { id: string }[] } };
    };
    expect(written.env.staging.d1_databases[0]!.database_id).toBe(account.databases[0]!.uuid);
    expect(written.env.staging.kv_namespaces[0]!.id).toBe(account.namespaces[0]!.id);
    expect(written.d1_databases[0]!.database_id).toBe('00000000-0000-0000-0000-000000000000');
    expect(written.vars.PUBLIC_URL).toBeUndefined();
  });
});

describe('with no terminal it never asks', () => {
  it('no PUBLIC_URL and CI=true: the script exits 1 naming --public-url, having run nothing', () => {
    const p = project();
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'deploy.mjs'), '--yes'], { cwd: p.dir, env: p.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('PUBLIC_URL is not set and there is no terminal to ask: pass --public-url');
    expect(p.account().calls).toEqual([]);
  });

  it('changes to make and no --yes: it stops after the look-ups, naming --yes, having created nothing', async () => {
    const p = project();
    const run = await p.run(['--public-url', PUBLIC_URL]);
    expect(run.error).toMatch(/no terminal to ask: pass --yes/);
    expect(commands(p.account())).toEqual(LOOK_UPS);
    expect(existsSync(join(p.dir, 'wrangler.production.jsonc'))).toBe(false);
  });
});

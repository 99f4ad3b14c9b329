/**
 * The committed wrangler.toml is production's: deployed (or run) as it is, with no setting
 * added, the gateway fails closed with a configuration_error naming the missing setting.
 * `npm run dev` (scripts/dev.mjs) still gives a working development gateway on its own, on
 * the port it is given, and sends the other loopback name to PUBLIC_URL's host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unstable_readConfig } from 'wrangler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load';
import { freePort, isolatedEnvFile, ROOT, wranglerProcessEnv } from './harness';

const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');
const ENV = wranglerProcessEnv();

interface Running {
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

/** Spawns a process group (dev.mjs has children of its own) and stops all of it. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = ENV): Running {
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM'); // dev.mjs passes it on to wrangler and stops its companions
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  return { child, output: () => output, stop };
}

/** Resolves with the first answer from `url` (any status), or throws if the process ends first. */
async function firstAnswer(url: string, proc: Running): Promise<Response> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`exited early (${proc.child.exitCode}):\n${proc.output()}`);
    try {
      return await fetch(url, { redirect: 'manual' });
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no answer from ${url}:\n${proc.output()}`);
}

describe('the committed wrangler.toml', () => {
  const vars = { ...unstable_readConfig({ config: join(ROOT, 'wrangler.toml') }).vars };

  it('says production and names no PUBLIC_URL: a deploy of it fails closed on PUBLIC_URL', () => {
    expect(vars.ENVIRONMENT).toBe('production');
    const result = parseConfig(vars);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.setting).toBe('PUBLIC_URL');
  });

  it('with PUBLIC_URL set but no SIGNING_KEYS secret, fails closed on SIGNING_KEYS', () => {
    const result = parseConfig({ ...vars, PUBLIC_URL: 'https://auth.example.com' });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.setting).toBe('SIGNING_KEYS');
  });

  describe('run as it is by wrangler dev (no --var, no .dev.vars)', () => {
    let proc: Running;
    let url: string;
    let persist: string;

    beforeAll(async () => {
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      persist = mkdtempSync(join(tmpdir(), 'gatehouse-e2e-defaults-'));
      // An empty env file stands in for the secrets a fresh deploy does not have yet; it also
      // keeps a developer's .dev.vars out of this test.
      const emptyEnvFile = isolatedEnvFile(persist);
      const args = ['dev', '--port', String(port), '--inspector-port', String(await freePort()), '--ip', '127.0.0.1'];
      proc = run(WRANGLER, [...args, '--persist-to', persist, '--env-file', emptyEnvFile, '--show-interactive-dev-session=false']);
    });

    afterAll(async () => {
      await proc?.stop();
      if (persist) rmSync(persist, { recursive: true, force: true });
    });

    it('answers every request with 500 configuration_error naming PUBLIC_URL', async () => {
      const health = await firstAnswer(`${url}/auth/health`, proc);
      expect(health.status).toBe(500);
      expect(await health.json()).toMatchObject({ error: 'configuration_error', setting: 'PUBLIC_URL' });
      const login = await fetch(`${url}/auth/login`, { redirect: 'manual' });
      expect(login.status).toBe(500);
      expect(await login.json()).toMatchObject({ error: 'configuration_error', setting: 'PUBLIC_URL' });
    });
  });
});

describe('npm run dev (scripts/dev.mjs) on another port', () => {
  let proc: Running;
  let port: number;
  let persist: string;
  let envFile: string;
  const devVars = join(ROOT, '.dev.vars');
  const devVarsBefore = existsSync(devVars) ? readFileSync(devVars, 'utf8') : null;

  beforeAll(async () => {
    port = await freePort();
    persist = mkdtempSync(join(tmpdir(), 'gatehouse-e2e-devscript-'));
    // Its own env file in place of .dev.vars: dev.mjs writes its signing key there (not into the
    // developer's .dev.vars), and a developer's settings do not reach this gateway.
    envFile = isolatedEnvFile(persist);
    const args = ['--port', String(port), '--inspector-port', String(await freePort()), '--ip', '127.0.0.1', '--persist-to', persist, '--env-file', envFile, '--show-interactive-dev-session=false'];
    // Port 0: the companions (dev OpenID Connect server, echo origin, mail catcher) take free ports.
    proc = run(process.execPath, [join(ROOT, 'scripts', 'dev.mjs'), ...args], {
      ...ENV,
      DEV_OIDC_PORT: '0',
      ECHO_ORIGIN_PORT: '0',
      MAIL_CATCHER_SMTP_PORT: '0',
      MAIL_CATCHER_WEB_PORT: '0',
    });
  });

  afterAll(async () => {
    await proc?.stop();
    if (persist) rmSync(persist, { recursive: true, force: true });
  });

  it('serves a development gateway whose PUBLIC_URL is http://localhost:<port>', async () => {
    const health = await firstAnswer(`http://localhost:${port}/auth/health`, proc);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    // Dev sign-in exists only in development; its redirect_uri is built from PUBLIC_URL.
    const start = await fetch(`http://localhost:${port}/auth/login/dev`, { redirect: 'manual' });
    expect(start.status).toBe(302);
    const authorize = new URL(start.headers.get('location')!);
    expect(authorize.searchParams.get('redirect_uri')).toBe(`http://localhost:${port}/auth/callback/dev`);
  });

  it('starts a mail catcher with a web inbox, prints its URL and points the gateway at it', async () => {
    await firstAnswer(`http://localhost:${port}/auth/health`, proc);
    const inbox = /mail catcher: .* inbox at (http:\/\/127\.0\.0\.1:\d+)/.exec(proc.output())?.[1];
    expect(inbox, proc.output()).toBeDefined();
    const page = await fetch(inbox!, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    expect(await (await fetch(`${inbox}/api/healthz`)).json()).toBe(true);
    // wrangler lists the settings it was given (values hidden): SMTP_URL is among them.
    expect(proc.output()).toMatch(/SMTP_URL/);
  });

  it('mails a registration to the catcher: the verification link shows up in its inbox (REST API)', async () => {
    await firstAnswer(`http://localhost:${port}/auth/health`, proc);
    const inbox = /mail catcher: .* inbox at (http:\/\/127\.0\.0\.1:\d+)/.exec(proc.output())![1]!;
    const email = `dev-${Date.now().toString(36)}@example.com`;
    const r = await fetch(`http://localhost:${port}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: 'a dev passphrase that is long' }),
    });
    // With a transport, EMAIL_VERIFICATION defaults to required: no session, check your inbox.
    expect(r.status).toBe(202);
    expect(await r.json()).toMatchObject({ status: 'check_email' });
    const deadline = Date.now() + 10_000;
    let found: string | undefined;
    while (!found && Date.now() < deadline) {
      const all = JSON.stringify(await (await fetch(`${inbox}/api/email`)).json());
      if (all.includes(email)) found = all;
      else await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(found, 'the mail reached the catcher').toBeDefined();
    expect(found).toContain('Confirm your email for');
    expect(found).toContain(`http://localhost:${port}/auth/email/verify?token=`);
  });

  it('sends a request for 127.0.0.1 to localhost first, path and query kept', async () => {
    const r = await firstAnswer(`http://127.0.0.1:${port}/auth/login?return_to=%2Fprivate`, proc);
    expect(r.status).toBe(307);
    expect(r.headers.get('location')).toBe(`http://localhost:${port}/auth/login?return_to=%2Fprivate`);
  });

  it('keeps its signing key in the env file it was given, and leaves .dev.vars alone', () => {
    expect(readFileSync(envFile, 'utf8')).toMatch(/^SIGNING_KEYS='\{"keys":\[/m);
    expect(existsSync(devVars) ? readFileSync(devVars, 'utf8') : null).toBe(devVarsBefore);
  });
});

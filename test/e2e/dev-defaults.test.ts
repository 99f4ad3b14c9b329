/**
 * The committed wrangler.toml is production's: deployed (or run) as it is, with no setting
 * added, the gateway fails closed with a configuration_error naming the missing setting.
 * `npm run dev` (scripts/dev.mjs), started by README's quick-start line, still gives a working
 * development gateway on its own, on the port it is given, sends the other loopback name to
 * PUBLIC_URL's host, ends its output with the URLs that matter, and runs README's token-mode
 * example as printed.
 *
 * README's examples are read from README.md at test time: the ```sh block after an
 * `<!-- e2e: NAME -->` comment. The one change made to them is the addresses: README's
 * `localhost:8787` (the gateway) and `127.0.0.1:1080` (the mail catcher's inbox) become this
 * test's ports (`onOurPorts`), and the quick start's `npm run dev` gets this test's arguments
 * after `--`, as README's "Another port" says.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unstable_readConfig } from 'wrangler';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { echoOriginCompanion } from '../../scripts/dev/echo-origin.mjs';
import { parseConfig } from '../../src/config/load';
import { freePort, isolatedEnvFile, ROOT, wranglerProcessEnv } from './harness';
import { missingPeer } from './interop/processes';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The ```sh block README.md marks with `<!-- e2e: name -->`. */
function readmeBlock(name: string): string {
  const m = new RegExp(`<!-- e2e: ${name} -->\\s*\\n\`\`\`sh\\n([\\s\\S]*?)\\n\`\`\`\\n`).exec(README);
  if (!m) throw new Error(`README.md has no \`\`\`sh block marked <!-- e2e: ${name} -->`);
  return m[1]!;
}

interface Step {
  command: string;
  /** README's `# …` line right after the command: what it prints, `…` standing for anything. */
  prints?: string;
}

/** A block's commands (continuation lines joined), each with the output README shows for it. */
function stepsOf(block: string): Step[] {
  const steps: Step[] = [];
  let pending = '';
  for (const line of block.split('\n')) {
    if (pending) {
      pending += `\n${line}`;
      if (!line.endsWith('\\')) (steps.push({ command: pending }), (pending = ''));
    } else if (/^# [{[]/.test(line) && steps.length) steps.at(-1)!.prints = line.slice(2);
    else if (line.startsWith('#') || !line.trim()) continue;
    else if (line.endsWith('\\')) pending = line;
    else steps.push({ command: line });
  }
  return steps;
}

/** README's `…` as "anything", the rest literally, the whole output. */
const shownAs = (prints: string) => new RegExp(`^${prints.split('…').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[\\s\\S]*')}$`);

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
    // The whole group (npm, dev.mjs, wrangler): dev.mjs passes it on and stops its companions.
    process.kill(-child.pid!, 'SIGTERM');
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

/**
 * A browser's top-level navigation (fetch() would say `Sec-Fetch-Mode: cors`): status, Location
 * and body. A `*.localhost` name goes to loopback, as browsers send it (Node's resolver may not know it).
 */
function navigate(url: string): Promise<{ status: number; location: string | undefined; contentType: string; body: string }> {
  return new Promise((resolve, reject) => {
    const toLoopback = (_host: string, options: { all?: boolean }, done: (error: null, address: string | { address: string; family: number }[], family?: number) => void) =>
      options.all ? done(null, [{ address: '127.0.0.1', family: 4 }]) : done(null, '127.0.0.1', 4);
    const loopback = new URL(url).hostname.endsWith('.localhost') ? { lookup: toLoopback } : {};
    const req = httpGet(url, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' }, ...loopback }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, location: res.headers.location, contentType: String(res.headers['content-type'] ?? ''), body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
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

    it('shows a browser that opens it a plain page with the same message, not JSON', async () => {
      await firstAnswer(`${url}/auth/health`, proc);
      const page = await navigate(`${url}/auth/login`);
      expect(page.status).toBe(500);
      expect(page.contentType).toMatch(/^text\/html/);
      expect(page.body).toContain('PUBLIC_URL: is required in production');
      expect(page.body).not.toContain('"error"');
    });
  });
});

/** README's addresses, as this test's: the one change made to README's commands before running them. */
function onOurPorts(text: string, ports: { gateway: number; inbox: string }): string {
  return text.replaceAll('localhost:8787', `localhost:${ports.gateway}`).replaceAll('127.0.0.1:1080', ports.inbox.replace(/^http:\/\//, ''));
}

/** The block `npm run dev` ends with: `[gatehouse] ready at …` and its indented `label  url` rows. */
function readyBlock(output: string): { text: string; urls: Record<string, string> } | undefined {
  const m = /\[gatehouse\] ready at \S+\n(?: {2}\S.*\n?)+/.exec(output);
  if (!m) return undefined;
  const urls: Record<string, string> = {};
  for (const row of m[0].split('\n').slice(1)) {
    const r = /^ {2}(.+?) {2,}(https?:\/\/\S+)/.exec(row);
    if (r) urls[r[1]!.trim()] = r[2]!;
  }
  return { text: m[0], urls };
}

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
    // README's quick start, as printed: `npm install` (done: this test runs in an installed
    // tree, as CI's .ci/run installs first) then `npm run dev`, given this test's arguments
    // after `--` as README's "Another port" does.
    const quickStart = readmeBlock('quick-start').split('\n').map((l) => l.replace(/\s+#.*$/, '')).filter(Boolean);
    expect(quickStart).toEqual(['npm install', 'npm run dev']);
    // Port 0: the companions (dev OpenID Connect server, echo origin, mail catcher) take free ports.
    proc = run('bash', ['-c', `${quickStart[1]} -- ${args.join(' ')}`], {
      ...ENV,
      npm_config_update_notifier: 'false',
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

  it('ends its output with one short block: sign-in page, mail inbox, demo route, two app hosts, each answering', async () => {
    const deadline = Date.now() + 100_000;
    while (!readyBlock(proc.output()) && Date.now() < deadline) {
      if (proc.child.exitCode !== null) throw new Error(`exited early (${proc.child.exitCode}):\n${proc.output()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    await new Promise((r) => setTimeout(r, 1500)); // anything wrangler still had to say
    const output = proc.output();
    const block = readyBlock(output);
    expect(block, output).toBeDefined();
    // Last: after wrangler's migration output, its bindings table and its "Ready on" line.
    expect(output.trimEnd().endsWith(block!.text.trimEnd()), output).toBe(true);
    expect(output.indexOf('Ready on')).toBeGreaterThan(-1);
    expect(output.indexOf('Ready on')).toBeLessThan(output.indexOf('[gatehouse] ready at'));
    expect(output.indexOf('SMTP_URL')).toBeLessThan(output.indexOf('[gatehouse] ready at'));
    expect(block!.text.split('\n').filter(Boolean).length).toBeLessThanOrEqual(6);
    const { urls } = block!;
    expect(Object.keys(urls)).toEqual(['sign-in page', 'mail inbox', 'demo route', 'app host', 'second host']);
    expect(urls['sign-in page']).toBe(`http://localhost:${port}/auth/login`);
    const signIn = await fetch(urls['sign-in page']!, { headers: { accept: 'text/html' } });
    expect(signIn.status).toBe(200);
    expect(await signIn.text()).toMatch(/<form/);
    expect(await (await fetch(`${urls['mail inbox']}/api/healthz`)).json()).toBe(true);
    // The demo route needs a sign-in: a browser is sent to the sign-in page, coming back to it.
    expect(urls['demo route']).toBe(`http://localhost:${port}/private`);
    const demo = await navigate(urls['demo route']!);
    expect(demo.status).toBe(302);
    expect(demo.location).toContain('/auth/login?return_to=');
    // and the demo origin is there behind it: the public root answers with its page.
    const root = await fetch(`http://localhost:${port}/`, { headers: { accept: 'text/html' } });
    expect(root.status).toBe(200);
    expect(await root.text()).toContain('Echo origin');
    // Two app hosts on *.localhost names (README "Hosts"): each sends a browser to the gateway's
    // single sign-on, coming back to it.
    expect(urls['app host']).toBe(`http://app.localhost:${port}/`);
    expect(urls['second host']).toBe(`http://wiki.localhost:${port}/`);
    for (const host of [urls['app host']!, urls['second host']!]) {
      const visit = await navigate(host);
      expect(visit.status, host).toBe(302);
      const sso = new URL(visit.location!);
      expect(sso.origin + sso.pathname, host).toBe(`http://localhost:${port}/auth/sso`);
      expect(sso.searchParams.get('return_to'), host).toBe(host);
      expect(sso.searchParams.get('state'), host).toMatch(/^[A-Za-z0-9_-]{22}$/);
    }
  });

  // README's example needs curl and jq: skipped on a machine without them, an error in CI.
  const tools = spawnSync('bash', ['-c', 'command -v curl && command -v jq'], { stdio: 'ignore' }).status === 0;
  it.skipIf(missingPeer('curl and jq', tools))("runs README's token-mode example as printed: register, the mailed link from the catcher's API, confirm, me, refresh, logout", async () => {
    await firstAnswer(`http://localhost:${port}/auth/health`, proc);
    const inbox = /mail catcher: .* inbox at (http:\/\/127\.0\.0\.1:\d+)/.exec(proc.output())![1]!;
    const steps = stepsOf(onOurPorts(readmeBlock('token-mode'), { gateway: port, inbox }));
    expect(steps.filter((s) => s.prints).length, 'README shows what the commands print').toBeGreaterThanOrEqual(5);
    // One bash runs them all, in order (variables carry over), with a marker after each.
    const script = ['set -euo pipefail', ...steps.map((s, i) => `${s.command}\nprintf '\\n@@step ${i}@@\\n'`)].join('\n');
    const { stdout } = await promisify(execFile)('bash', ['-c', script], { cwd: persist, env: ENV, timeout: 60_000 });
    const outputs = stdout.split(/\n@@step \d+@@\n/);
    expect(outputs.length, stdout).toBe(steps.length + 1);
    steps.forEach((step, i) => {
      if (step.prints) expect(outputs[i]!.trim(), step.command).toMatch(shownAs(step.prints));
    });
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

describe('npm run dev with ROUTES of your own (the echo-origin companion, no wrangler)', () => {
  const routes = JSON.stringify([{ path: '/app', origin: 'http://127.0.0.1:9', auth: 'required' }]);
  let printed: string[];
  beforeEach(() => {
    printed = [];
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void printed.push(args.join(' ')));
  });
  afterEach(() => vi.restoreAllMocks());

  it.each([
    ['the environment (ROUTES=… npm run dev)', { environment: { ROUTES: routes } }, { ROUTES: routes }],
    ['--var ROUTES:…', { givenVars: [`ROUTES:${routes}`], environment: {} }, {}],
    ['the env file', { devVarsText: `ROUTES='${routes}'\n`, environment: {} }, {}],
  ])('from %s: no demo origin, the real routes announced and given to the gateway', async (_, given, vars) => {
    const started = await echoOriginCompanion(given);
    await started.stop();
    // The environment's value is passed on as --var (wrangler would drop it); --var and the env
    // file reach the Worker through wrangler itself, so nothing overrides them.
    expect(started.vars).toEqual(vars);
    expect(started.links).toEqual([{ label: 'route', url: '/app', note: '-> http://127.0.0.1:9 (auth: required)' }]);
    const said = printed.join('\n');
    expect(said).toContain('no demo origin');
    expect(said).toContain('/app -> http://127.0.0.1:9');
    expect(said).not.toMatch(/demo echo origin|\/private/);
  });

  it('--var wins over the environment, which wins over the env file', async () => {
    const other = JSON.stringify([{ path: '/other', origin: 'http://127.0.0.1:9', auth: 'public' }]);
    const byVar = await echoOriginCompanion({ givenVars: [`ROUTES:${routes}`], environment: { ROUTES: other }, devVarsText: `ROUTES='${other}'` });
    expect(byVar.vars).toEqual({});
    expect(byVar.links.map((l: { url: string }) => l.url)).toEqual(['/app']);
    const byEnv = await echoOriginCompanion({ environment: { ROUTES: routes }, devVarsText: `ROUTES='${other}'` });
    expect(byEnv.vars).toEqual({ ROUTES: routes });
  });

  it('says so when the ROUTES given is not JSON (the gateway will refuse it)', async () => {
    await echoOriginCompanion({ environment: { ROUTES: '[{path:' } });
    expect(printed.join('\n')).toContain('ROUTES is not valid JSON');
  });

  it('without one, starts the demo origin and announces its routes, which answer', async () => {
    const started = await echoOriginCompanion({ environment: {}, givenVars: [], devVarsText: '' });
    try {
      const demo = JSON.parse(started.vars.ROUTES) as { host?: string; path: string; origin: string }[];
      expect(demo.map((r) => `${r.host ?? ''}${r.path}`)).toEqual(['/', '/private', '/eng', 'app.localhost/', 'wiki.localhost/']);
      expect(started.links.map((l: { url: string }) => l.url)).toEqual(['/private', 'http://app.localhost:8787/', 'http://wiki.localhost:8787/']);
      expect((await fetch(`${demo[0]!.origin}/`)).status).toBe(200);
    } finally {
      await started.stop();
    }
  });
});

/**
 * End-to-end harness: starts a real `wrangler dev` on free ports with its own local D1/KV
 * state (migrated first), and gives tests a small cookie-aware HTTP client.
 *
 * The launcher lives in scripts/lib/gateway.mjs, shared with `npm run load-test -- --start`.
 * A gateway started there has exactly wrangler.toml's [vars] plus the settings the test states:
 * a developer's .dev.vars (or .env) never reaches it (see `isolatedEnvFile`).
 */
import { inject } from 'vitest';
import { startGateway as start, type Gateway, type GatewayOptions } from '../../scripts/lib/gateway.mjs';

export { freePort, isolatedEnvFile, ROOT, stopChild, wranglerProcessEnv, type Gateway, type GatewayOptions } from '../../scripts/lib/gateway.mjs';

/** Starts a gateway from a copy of the run's migrated state (test/e2e/global-setup.ts). */
export function startGateway(options: GatewayOptions = {}): Promise<Gateway> {
  return start({ migrated: inject('migratedState'), ...options });
}

/**
 * How every e2e test launches Debian's Chromium (playwright-core cannot download a browser
 * here): `chromium.launch({ ...CHROMIUM })` or `launchPersistentContext(dir, { ...CHROMIUM })`.
 */
export const CHROMIUM = {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};

/** A minimal browser-like client: keeps cookies per name, never follows redirects by itself. */
export class Client {
  cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  /** The cookies held, as a `Cookie` request header (for requests sent past this client). */
  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async fetch(path: string, init: RequestInit & { json?: unknown; form?: Record<string, string> } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    } else if (init.form) {
      headers.set('content-type', 'application/x-www-form-urlencoded');
      body = new URLSearchParams(init.form).toString();
    }
    const url = new URL(path, this.base);
    if (this.cookies.size && url.origin === new URL(this.base).origin) {
      headers.set('cookie', this.cookieHeader());
    }
    const response = await fetch(url, { ...init, headers, body, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      const expired = attrs.some((a) => /max-age=0\b/i.test(a.trim())) || value === '';
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }
}

/**
 * `npm test` runs four projects:
 * - worker and worker-fresh: unit and integration tests inside workerd (Cloudflare's Vitest
 *   integration) with real local D1, KV and Durable Objects; the worker files share a runtime
 *   per worker slot, worker-fresh's each get one of their own (FRESH_RUNTIME below says why);
 * - e2e: Node-side tests that drive a real `wrangler dev`, real local peers (an OpenID Connect
 *   server, origins, nginx) and a real Chromium;
 * - build: checks on the deployable bundle (its gzip budget), in Node.
 */
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * wrangler reads `.dev.vars` (or `.env`) from the folder of the config file it is given, and the
 * plugin has no option to turn that off. The worker tests get a copy of wrangler.toml in a folder
 * of their own (under the git-ignored .wrangler/), so a developer's local settings never reach
 * them: the settings below and the test helpers' are all there is.
 */
function wranglerConfigWithoutDevVars(): string {
  const dir = resolve('.wrangler', 'vitest-config');
  mkdirSync(dir, { recursive: true });
  const copy = join(dir, 'wrangler.toml');
  copyFileSync('wrangler.toml', copy);
  return copy;
}

/**
 * CommonJS packages the Worker imports, as ES modules for the tests. workerd loads only ES
 * modules, and wrangler's esbuild bundle converts these for the deployed Worker; the tests load
 * the sources module by module instead. Vite's dependency optimizer could convert them too, but
 * turning it on changes how every other module of the worker project is transformed and made
 * the whole run a quarter slower (300 s to 374 s). So esbuild converts just these, once per run,
 * into one folder (a shared chunk keeps one copy of what they share), and the worker project
 * resolves their names there. Named exports are listed from the packages themselves, as Node
 * sees them, because an ES module converted from CommonJS has only a default export.
 */
async function commonJsAsModules(packages: string[]): Promise<{ find: RegExp; replacement: string }[]> {
  const dir = resolve('.wrangler', 'vitest-deps');
  mkdirSync(dir, { recursive: true });
  const require = createRequire(import.meta.url);
  const entryPoints = packages.map((name) => {
    const names = Object.keys(require(name) as object).filter((key) => /^[A-Za-z_$][\w$]*$/.test(key));
    const entry = join(dir, `${name}.entry.mjs`);
    writeFileSync(entry, `import m from '${name}';\nexport const { ${names.join(', ')} } = m;\nexport default m;\n`);
    return { in: entry, out: name };
  });
  await build({ entryPoints, bundle: true, splitting: true, format: 'esm', platform: 'neutral', mainFields: ['main'], outdir: join(dir, 'out'), outExtension: { '.js': '.mjs' }, logLevel: 'warning' });
  return packages.map((name) => ({ find: new RegExp(`^${name}$`), replacement: join(dir, 'out', `${name}.mjs`) }));
}

/**
 * Test files run four at a time, across all four projects: one group (vitest's default is one
 * fewer than the cores, one on a 2-core CI machine, and a project whose maxWorkers differs from
 * another's runs in a group of its own, one group after the other). Four on two cores: the e2e
 * files spend much of their time waiting (wrangler dev, Chromium, a provider's groups growing
 * old), and the worker files, sharing a runtime, are short and CPU-bound, so two of each keep
 * both cores busy. On this 2-core machine the suite took 314 s with four and 340 s with three.
 */
const WORKERS = 4;

/**
 * The Worker's own signing key as its Durable Objects see it: an object's env is the bindings
 * below, not the env a test hands to the Worker's `fetch`, and the sessions object signs the
 * logout tokens its alarm delivers. Made afresh for each run; tests read it as
 * `env.SIGNING_KEYS` from `cloudflare:test`.
 */
function objectSigningKeys(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return JSON.stringify({ keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test-object-key', alg: 'ES256' }] });
}

/**
 * Vitest's order (its own within each project: slowest or largest first) with the projects
 * spread through the run in proportion to their sizes, rather than one after the other or
 * strictly in turn. The e2e files are few and long, and spend much of their time waiting on
 * wrangler dev, Chromium and peers: spread out, they run beside the CPU-bound worker files, so
 * both cores stay busy from start to end. Taken strictly in turn, the e2e files all ran in the
 * first third of the run, several at a time, leaving a core idle, and the rest was worker files
 * alone. (Spreading them over the first 70 % of the order instead, to end on short worker
 * files, measured no faster.)
 */
class ProjectsSpread extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const queues = new Map<string, TestSpecification[]>();
    for (const file of await super.sort(files)) {
      const queue = queues.get(file.project.name) ?? [];
      queue.push(file);
      queues.set(file.project.name, queue);
    }
    const lanes = [...queues.values()].map((queue) => ({ queue, taken: 0 }));
    /** Where the lane's next file falls in the run, as a fraction of it. */
    const due = (lane: (typeof lanes)[number]) => (lane.taken + 0.5) / lane.queue.length;
    const order: TestSpecification[] = [];
    while (order.length < files.length) {
      // The lane whose next file is due earliest goes next.
      let next: (typeof lanes)[number] | undefined;
      for (const lane of lanes) {
        if (lane.taken < lane.queue.length && (next === undefined || due(lane) < due(next))) next = lane;
      }
      order.push(next!.queue[next!.taken++]!);
    }
    return order;
  }
}

/**
 * Worker test files that need a runtime of their own (`isolate: true`, a fresh workerd per
 * file). All other worker files share one runtime per worker slot (`isolate: false`): starting
 * workerd and loading the Worker's modules again for every file cost about 1.4 CPU-seconds a
 * file, more than a third of the whole run. Sharing is safe for a file whose users, clients and
 * rows are its own (random addresses and ids), whose rate-limit buckets are its own
 * (support/helpers.ts `makeEnv`: the running file's), and whose stubbed globals and spies are
 * put back after it (setup.ts).
 * A file belongs here when it
 * - asserts something that happens once per isolate (a first log line, a module loaded on first
 *   use, counts a module holds between requests);
 * - reads or changes what every file would see: state of the whole gateway in D1 (a created
 *   SCIM token turns SCIM on for every env; directory group names are unique across the
 *   database; the last administrator; housekeeping's and the Health page's counts over every
 *   row; ten thousand users added to page through), or the shared `env` of `cloudflare:test`;
 * - counts requests to a fake network's hosts, or hands its own `fetch` to the Worker's caches
 *   (keys, discovery documents), which would answer another file from the first one's.
 */
const FRESH_RUNTIME = [
  'test/worker/codebase/test-environment.test.ts',
  'test/worker/console/rate-limit-hits*.test.ts',
  'test/worker/gateway/rate-limits.test.ts',
  'test/worker/observability/metrics.test.ts',
  'test/worker/scim/**/*.test.ts',
  'test/worker/accounts/change-email-and-delete.test.ts',
  'test/worker/gateway/scheduled-housekeeping.test.ts',
  'test/worker/console/console-health.test.ts',
  'test/worker/console/console-sessions-reach.test.ts',
  'test/worker/accounts/breached-passwords.test.ts',
  'test/worker/mail/unsent-sign-in-code.test.ts',
  'test/worker/sessions/access-token-verification.test.ts',
  'test/worker/sign-in/oauth-flow.test.ts',
  'test/worker/sign-in/oauth-id-token.test.ts',
  'test/worker/sign-in/oauth-provider-faults.test.ts',
];

export default defineConfig(async () => {
  const migrations = await readD1Migrations('migrations');
  const commonJsPackages = await commonJsAsModules(['scim-patch', 'scim2-parse-filter']);
  const signingKeys = objectSigningKeys();
  const workerProject = (name: string, files: { include?: string[]; exclude?: string[]; isolate: boolean }) => ({
  plugins: [
    cloudflareTest({
      // The copy's own `main` would resolve next to it: name the entry point here.
      main: './src/index.ts',
      wrangler: { configPath: wranglerConfigWithoutDevVars() },
      miniflare: {
        bindings: {
          TEST_MIGRATIONS: migrations,
          ENVIRONMENT: 'production',
          PUBLIC_URL: 'https://gate.example.com',
          SIGNING_KEYS: signingKeys,
        },
        // Miniflare's local Email Service, under other names than EMAIL so that mail
        // stays off unless a test turns it on (test/worker/mail/transport.test.ts).
        email: {
          send_email: [
            { name: 'TEST_EMAIL_SERVICE' },
            { name: 'TEST_EMAIL_SERVICE_RESTRICTED', destination_address: 'only-this@example.com' },
          ],
        },
      },
    }),
  ],
  resolve: {
    // Cheap password hashing for these tests (src/auth/password-cost.ts says why). Only
    // password-hash.ts imports the module by this specifier; the test that pins the
    // production parameters imports it by its path and gets the real one.
    alias: [{ find: /^\.\/password-cost$/, replacement: resolve('test/worker/support/password-cost.ts') }, ...commonJsPackages],
  },
  test: {
    name,
    include: files.include ?? ['test/worker/**/*.test.{ts,tsx}'],
    exclude: files.exclude ?? [],
    setupFiles: ['./test/worker/support/setup.ts'],
    // A real SMTP server for the mail tests (test/worker/support/mail.ts).
    globalSetup: ['./test/worker/support/global-setup-mail.ts'],
    testTimeout: 30_000,
    isolate: files.isolate,
    maxWorkers: WORKERS,
  },
});
  return {
    test: {
      // The gateway logs a JSON line per request: show logs only for failing tests.
      silent: 'passed-only',
      sequence: { sequencer: ProjectsSpread },
      projects: [
        workerProject('worker', { exclude: FRESH_RUNTIME, isolate: false }),
        workerProject('worker-fresh', { include: FRESH_RUNTIME, isolate: true }),
        {
          test: {
            name: 'e2e',
            include: ['test/e2e/**/*.test.ts'],
            environment: 'node',
            testTimeout: 120_000,
            hookTimeout: 120_000,
            globalSetup: ['./test/e2e/global-setup.ts'],
            maxWorkers: WORKERS,
            fileParallelism: true,
          },
        },
        {
          // Checks on the build itself (the bundle budget): Node-side, one wrangler build.
          test: {
            name: 'build',
            include: ['test/build/**/*.test.ts'],
            environment: 'node',
            testTimeout: 120_000,
            hookTimeout: 120_000,
            maxWorkers: WORKERS,
          },
        },
      ],
    },
  };
});

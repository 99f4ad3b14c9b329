#!/usr/bin/env node
// `npm run deploy`: walks a deployment, first or later, through wrangler. It reads wrangler.toml
// (with wrangler's own reader, so it sees what wrangler deploys), refuses a development
// configuration before anything is created, finds or creates the D1 database, the KV namespace
// and the Queues, writes the deploy configuration (wrangler.production.jsonc: wrangler.toml with
// the real ids and PUBLIC_URL; wrangler.toml's placeholders stay for local development, whose
// local D1 state is keyed by them), uploads a new SIGNING_KEYS only when the Worker has none,
// applies the D1 migrations, deploys, and says what is left. Every step finds before it
// creates, so a second run changes nothing but the code.
//
//   npm run deploy                                  asks for what it needs (a terminal)
//   npm run deploy -- --public-url https://auth.example.com --yes    (CI: never asks)
//   npm run deploy -- --dry-run                     the read-only steps; prints what it would run
// Other flags: --env NAME (a wrangler environment), --config FILE (default wrangler.toml),
// --output FILE (default wrangler.production.jsonc next to the config), --local (migrations go
// to wrangler's local D1, --persist-to DIR to choose its folder: a rehearsal on this machine).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, delimiter, dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateSigningJwk } from '../src/keys/generate-jwk.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** A refusal or a failed step: the message is what the operator reads; the exit code is 1. */
export class DeployError extends Error {
  name = 'DeployError';
}

const USAGE = `Usage: npm run deploy -- [--public-url URL] [--yes] [--dry-run] [--env NAME] [--config FILE] [--output FILE] [--local [--persist-to DIR]]`;

/** Settings that are secrets: set with `wrangler secret put`, never in a config file's [vars]. */
const SECRET_SETTINGS = ['SIGNING_KEYS', 'TOKEN_ENCRYPTION_KEY', 'SMTP_URL', 'SCIM_TOKEN', 'GITHUB_CLIENT_SECRET', 'GOOGLE_CLIENT_SECRET', 'GITLAB_CLIENT_SECRET', 'OIDC_CLIENT_SECRET', 'ALERT_WEBHOOK_URL'];
const PROVIDERS = [
  ['GITHUB_CLIENT_ID', 'GITHUB_CLIENT_SECRET'],
  ['GOOGLE_CLIENT_ID', 'GOOGLE_CLIENT_SECRET'],
  ['GITLAB_CLIENT_ID', 'GITLAB_CLIENT_SECRET'],
];
/**
 * Hosts users cannot reach: loopback, unspecified, private and link-local addresses, as the URL
 * parser writes them (it turns 127.1 into 127.0.0.1 and ::ffff:127.0.0.1 into ::ffff:7f00:1),
 * with a trailing dot dropped (localhost. is localhost).
 */
const LOCAL_HOST = /^(localhost|.*\.localhost|(127|0|10)(\.\d+){3}|172\.(1[6-9]|2\d|3[01])(\.\d+){2}|192\.168(\.\d+){2}|169\.254(\.\d+){2}|\[(::1?|::ffff:.*|f[cd].*|fe[89ab].*)\])$/;

/** wrangler.toml's placeholder ids (all zeros): a binding that still has one needs its resource. */
const isPlaceholder = (id) => typeof id !== 'string' || /^[0-]*$/.test(id);

export function parseFlags(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      'public-url': { type: 'string' },
      yes: { type: 'boolean', short: 'y', default: false },
      'dry-run': { type: 'boolean', default: false },
      env: { type: 'string' },
      config: { type: 'string', default: 'wrangler.toml' },
      output: { type: 'string' },
      local: { type: 'boolean', default: false },
      'persist-to': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  return values;
}

/**
 * The seam every wrangler command goes through. `wrangler` is looked up on PATH first (npm puts
 * node_modules/.bin there; a test puts its fake there), then this checkout's own.
 */
export function wranglerRunner({ cwd, env = process.env, stdout = process.stdout }) {
  const PATH = [env.PATH, join(root, 'node_modules', '.bin')].filter(Boolean).join(delimiter);
  const childEnv = { ...env, PATH };
  return {
    /** Runs and captures; a non-zero exit is returned, not thrown (callers say what it means). */
    capture(args, input) {
      const r = spawnSync('wrangler', args, { cwd, env: childEnv, encoding: 'utf8', input: input ?? '', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
      if (r.error) throw new DeployError(`could not run wrangler ${args.join(' ')}: ${r.error.message}`);
      return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
    },
    /** Runs with wrangler's output shown as it comes (migrations, the upload). */
    stream(args) {
      // CI=true: wrangler does not stop to confirm; the walk-through has asked already.
      const child = spawn('wrangler', args, { cwd, env: { ...childEnv, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.pipe(stdout, { end: false });
      child.stderr.pipe(stdout, { end: false });
      return new Promise((done, fail) => {
        child.on('error', (e) => fail(new DeployError(`could not run wrangler ${args.join(' ')}: ${e.message}`)));
        child.on('close', (code) => done({ code: code ?? 1 }));
      });
    },
  };
}

function failed(args, r) {
  const tail = `${r.stderr ?? ''}\n${r.stdout ?? ''}`.trim().split('\n').slice(-6).join('\n');
  return new DeployError(`wrangler ${args.join(' ')} failed (exit ${r.code})${tail ? `:\n${tail}` : ''}`);
}

/** JSON printed by a wrangler list command (wrangler may print a notice before it). */
function parseJsonOutput(args, stdout) {
  const start = stdout.search(/^\s*[[{]/m);
  try {
    return JSON.parse(start >= 0 ? stdout.slice(start) : stdout);
  } catch {
    throw new DeployError(`wrangler ${args.join(' ')} printed something that is not JSON:\n${stdout.trim().slice(0, 400)}`);
  }
}

/** The part of the configuration an environment deploys: wrangler does not inherit bindings and vars into an [env.NAME]. */
function scopeOf(config, envName) {
  if (!envName) return config;
  const scoped = config.env?.[envName];
  if (!scoped) throw new DeployError(`--env ${envName}: the configuration has no [env.${envName}] section`);
  return scoped;
}

/** Why this configuration is a development one, each reason naming the setting. */
export function developmentReasons(vars, publicUrl) {
  const reasons = [];
  if (vars.ENVIRONMENT === 'development') reasons.push('ENVIRONMENT is "development": a production gateway says "production" (wrangler.toml\'s default)');
  let url;
  try {
    url = new URL(publicUrl);
  } catch {
    reasons.push(`PUBLIC_URL ${JSON.stringify(publicUrl)} is not a URL: give the gateway's https origin, e.g. https://auth.example.com`);
  }
  if (url && url.protocol !== 'https:') reasons.push(`PUBLIC_URL ${publicUrl} does not use https: cookies are Secure and providers redirect to it`);
  if (url && LOCAL_HOST.test(url.hostname.replace(/\.$/, ''))) reasons.push(`PUBLIC_URL ${publicUrl} is a local address (${url.hostname}): give the origin users reach`);
  if (url && url.pathname !== '/') reasons.push(`PUBLIC_URL ${publicUrl} has a path: it is an origin (scheme and host only)`);
  else if (url && url.hostname.endsWith('.') && !LOCAL_HOST.test(url.hostname.slice(0, -1))) reasons.push(`PUBLIC_URL ${publicUrl}: its host ends with a dot: write ${url.origin.replace(/\.(?=(:\d+)?$)/, '')} (cookies, redirects and the issuer name the host users type)`);
  // The gateway keeps only the origin; a user and password would sit in the written config and the Worker's vars.
  else if (url && url.protocol === 'https:' && url.origin !== publicUrl) reasons.push(`PUBLIC_URL ${publicUrl} is not an origin: write ${url.origin} (no user, password, query or fragment)`);
  if (vars.DEV_OIDC_ISSUER) reasons.push('DEV_OIDC_ISSUER is set: the dev sign-in provider signs in anyone, it is for `npm run dev` only');
  // As load.ts reads it: the parsed scheme, so HTTP:// is http too.
  if (typeof vars.OIDC_ISSUER === 'string' && URL.canParse(vars.OIDC_ISSUER) && new URL(vars.OIDC_ISSUER).protocol !== 'https:') reasons.push('OIDC_ISSUER uses http: discovery over plain http can be swapped by anyone on the path');
  for (const name of SECRET_SETTINGS) {
    if (vars[name] !== undefined) reasons.push(`${name} is in [vars]: a secret in a config file is a development key or a leaked one; remove it there (wrangler secret put ${name} holds it)`);
  }
  return reasons;
}

/** The Durable Object classes the migrations leave in place, in order, as Cloudflare applies them. */
export function migratedClasses(migrations = []) {
  const classes = new Set();
  for (const m of migrations) {
    for (const c of [...(m.new_classes ?? []), ...(m.new_sqlite_classes ?? [])]) classes.add(c);
    for (const { from, to } of m.renamed_classes ?? []) {
      classes.delete(from);
      classes.add(to);
    }
    for (const c of m.deleted_classes ?? []) classes.delete(c);
  }
  return classes;
}

async function readRawConfig(configPath) {
  if (!existsSync(configPath)) throw new DeployError(`--config: ${configPath} does not exist`);
  // wrangler's own reader (its TOML parser and file-format rules): no second parser to disagree with it.
  const { experimental_readRawConfig } = await import('wrangler');
  return structuredClone(experimental_readRawConfig({ config: configPath }).rawConfig);
}

/** The deploy configuration a previous run wrote (JSON behind a comment header), if any. */
function readPreviousOutput(path) {
  if (!existsSync(path)) return null;
  const text = readFileSync(path, 'utf8').replace(/^(\s*\/\/[^\n]*\n)+/, '');
  try {
    return JSON.parse(text);
  } catch {
    throw new DeployError(`${path} is not the JSON this script writes: move it away and run again`);
  }
}

function interactive(env, stdin, stdout) {
  return Boolean(stdin.isTTY && stdout.isTTY) && env.CI !== 'true' && env.CI !== '1';
}

/**
 * Questions on the terminal. Each question has its readline interface, closed once answered:
 * an open one keeps the terminal in raw mode, where Ctrl+C during the upload would not stop it.
 */
function asker(stdin, stdout) {
  return {
    async ask(question) {
      const rl = createInterface({ input: stdin, output: stdout });
      try {
        return (await rl.question(question)).trim();
      } finally {
        rl.close();
      }
    },
  };
}

/**
 * The walk-through. `io`: { stdin, stdout, env, cwd } (the process's by default) and `runner`
 * (the wrangler seam; by default wranglerRunner's). Resolves to the exit code; a refusal or a
 * failed step rejects with a DeployError.
 */
export async function deploy(argv, io = {}) {
  const env = io.env ?? process.env;
  const stdin = io.stdin ?? process.stdin;
  const stdout = io.stdout ?? process.stdout;
  const cwd = io.cwd ?? process.cwd();
  const say = (line = '') => stdout.write(`${line}\n`);
  let flags;
  try {
    flags = parseFlags(argv);
  } catch (e) {
    throw new DeployError(`${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
  }
  if (flags.help) {
    say(USAGE);
    return 0;
  }
  const runner = io.runner ?? wranglerRunner({ cwd, env, stdout });
  return walk({ flags, env, stdin, stdout, cwd, say, runner, questions: asker(stdin, stdout) });
}

async function walk({ flags, env, stdin, stdout, cwd, say, runner, questions }) {
  const canAsk = interactive(env, stdin, stdout);
  const dryRun = flags['dry-run'];
  const configPath = resolve(cwd, flags.config);
  const outputPath = resolve(dirname(configPath), flags.output ?? 'wrangler.production.jsonc');
  const outputName = relative(cwd, outputPath) || basename(outputPath);
  const envArgs = flags.env ? ['--env', flags.env] : [];
  const done = [];
  const plan = [];

  // 1. The configuration, and what makes it a development one: refused before anything exists.
  const config = await readRawConfig(configPath);
  const previous = readPreviousOutput(outputPath);
  const scope = scopeOf(config, flags.env);
  const vars = { ...(scope.vars ?? {}) };
  const workerName = scope.name ?? (flags.env ? `${config.name}-${flags.env}` : config.name);
  if (!workerName) throw new DeployError(`${flags.config} names no Worker (name = "...")`);

  const previousVars = (flags.env ? previous?.env?.[flags.env] : previous)?.vars;
  let publicUrl = flags['public-url'] ?? vars.PUBLIC_URL ?? previousVars?.PUBLIC_URL;
  if (!publicUrl) {
    if (!canAsk) throw new DeployError('PUBLIC_URL is not set and there is no terminal to ask: pass --public-url https://auth.example.com (or set PUBLIC_URL in [vars])');
    publicUrl = await questions.ask('The gateway\'s public https origin (PUBLIC_URL), e.g. https://auth.example.com: ');
  }
  publicUrl = publicUrl.replace(/\/+$/, '');
  vars.PUBLIC_URL = publicUrl;
  const reasons = developmentReasons(vars, publicUrl);
  const classes = migratedClasses(scope.migrations ?? config.migrations);
  for (const binding of scope.durable_objects?.bindings ?? []) {
    if (!binding.script_name && !classes.has(binding.class_name)) {
      reasons.push(`Durable Object ${binding.name}: no [[migrations]] entry creates class ${binding.class_name} (add new_sqlite_classes = ["${binding.class_name}"])`);
    }
  }
  if (reasons.length) {
    throw new DeployError(`Refusing to deploy a development configuration (${flags.config}${flags.env ? `, env ${flags.env}` : ''}):\n${reasons.map((r) => `  - ${r}`).join('\n')}\nNothing was created or changed.`);
  }
  say(`Deploying Worker "${workerName}" at ${publicUrl}${dryRun ? ' (dry run: nothing is created or changed)' : ''}`);
  if (classes.size) say(`  Durable Object migrations: present (${[...classes].join(', ')})`);

  // 2. Read-only look-ups: what exists already.
  const look = (args) => {
    const r = runner.capture(args);
    if (r.code !== 0) throw failed(args, r);
    return parseJsonOutput(args, r.stdout);
  };
  const d1 = scope.d1_databases?.find((d) => d.binding === 'DB');
  if (!d1) throw new DeployError(`${flags.config} has no D1 binding DB ([[d1_databases]] binding = "DB")`);
  const d1Name = d1.database_name ?? workerName;
  const findDatabase = () => {
    const list = look(['d1', 'list', '--json']);
    return list.find((db) => (isPlaceholder(d1.database_id) ? db.name === d1Name : db.uuid === d1.database_id));
  };
  let database = findDatabase();
  if (!database && !isPlaceholder(d1.database_id)) throw new DeployError(`D1 database_id ${d1.database_id} (binding DB) is not in this account (wrangler d1 list): fix the id or put the placeholder back to have one created`);
  if (database) say(`  D1 database "${database.name}": found (${database.uuid})`);
  else plan.push(['d1', 'create', d1Name]);

  const kv = scope.kv_namespaces?.find((k) => k.binding === 'REVOKED');
  if (!kv) throw new DeployError(`${flags.config} has no KV binding REVOKED ([[kv_namespaces]] binding = "REVOKED")`);
  const kvTitle = `${workerName}-revoked`;
  const findNamespace = () => {
    const list = look(['kv', 'namespace', 'list']);
    return list.find((ns) => (isPlaceholder(kv.id) ? ns.title === kvTitle : ns.id === kv.id));
  };
  let namespace = findNamespace();
  if (!namespace && !isPlaceholder(kv.id)) throw new DeployError(`KV namespace id ${kv.id} (binding REVOKED) is not in this account (wrangler kv namespace list): fix the id or put the placeholder back to have one created`);
  if (namespace) say(`  KV namespace "${namespace.title}": found (${namespace.id})`);
  else plan.push(['kv', 'namespace', 'create', kvTitle]);

  const queueNames = [...new Set([...(scope.queues?.producers ?? []).map((p) => p.queue), ...(scope.queues?.consumers ?? []).flatMap((c) => [c.queue, c.dead_letter_queue])].filter(Boolean))];
  for (const name of queueNames) {
    const args = ['queues', 'info', name];
    const r = runner.capture(args);
    if (r.code === 0) say(`  Queue "${name}": found`);
    else if (/does not exist/.test(`${r.stdout}${r.stderr}`)) plan.push(['queues', 'create', name]);
    else throw failed(args, r);
  }

  const secretArgs = ['secret', 'list', '--name', workerName];
  const secretsOut = runner.capture(secretArgs);
  let secrets;
  if (secretsOut.code === 0) secrets = new Set(parseJsonOutput(secretArgs, secretsOut.stdout).map((s) => s.name));
  // Only wrangler's own "no such Worker" means no key yet: any other fault would have a live key replaced (every user signed out).
  else if (`${secretsOut.stdout}${secretsOut.stderr}`.includes(`Worker "${workerName}" not found.`)) secrets = new Set();
  else throw failed(secretArgs, secretsOut);
  const uploadKey = !secrets.has('SIGNING_KEYS');
  if (uploadKey) plan.push(['secret', 'put', 'SIGNING_KEYS', '--name', workerName]);
  else say('  Secret SIGNING_KEYS: set already (kept)');

  const migrateArgs = ['d1', 'migrations', 'apply', 'DB', ...(flags.local ? ['--local', ...(flags['persist-to'] ? ['--persist-to', flags['persist-to']] : [])] : ['--remote']), '--config', outputName, ...envArgs];
  const deployArgs = ['deploy', '--config', outputName, ...envArgs];

  // 3. The plan; a dry run stops here.
  const runs = [...plan, null, migrateArgs, deployArgs];
  say('');
  say(dryRun ? 'Would run:' : 'Will run:');
  for (const args of runs) say(args ? `  wrangler ${args.join(' ')}` : `  (write ${outputName}: ${flags.config} with the ids above and PUBLIC_URL)`);
  if (dryRun) {
    say('');
    say('Dry run: nothing was created, uploaded or written.');
    printLeft(say, { vars, secrets: new Set([...secrets, 'SIGNING_KEYS']), scope, config, workerName });
    return 0;
  }
  if (!flags.yes) {
    if (!canAsk) throw new DeployError('These changes need a confirmation and there is no terminal to ask: pass --yes (or --dry-run to see them only)');
    const answer = await questions.ask('Go ahead? [y/N] ');
    if (!/^y(es)?$/i.test(answer)) throw new DeployError('Stopped: nothing was changed.');
  }

  // 4. The changes, each one found again afterwards so the ids come from the account itself.
  const change = (args, input) => {
    const r = runner.capture(args, input);
    if (r.code !== 0) throw failed(args, r);
  };
  if (!database) {
    change(['d1', 'create', d1Name]);
    database = findDatabase();
    if (!database) throw new DeployError(`wrangler d1 create ${d1Name} succeeded but wrangler d1 list does not show it`);
    done.push(`created the D1 database "${d1Name}" (${database.uuid})`);
  }
  if (!namespace) {
    change(['kv', 'namespace', 'create', kvTitle]);
    namespace = findNamespace();
    if (!namespace) throw new DeployError(`wrangler kv namespace create ${kvTitle} succeeded but wrangler kv namespace list does not show it`);
    done.push(`created the KV namespace "${kvTitle}" (${namespace.id})`);
  }
  for (const args of plan.filter((args) => args[0] === 'queues')) {
    change(args);
    done.push(`created the Queue "${args[2]}"`);
  }

  const deployConfig = structuredClone(config);
  const target = scopeOf(deployConfig, flags.env);
  target.vars = { ...(target.vars ?? {}), PUBLIC_URL: publicUrl };
  target.d1_databases = target.d1_databases.map((d) => (d.binding === 'DB' ? { ...d, database_name: database.name, database_id: database.uuid } : d));
  target.kv_namespaces = target.kv_namespaces.map((k) => (k.binding === 'REVOKED' ? { ...k, id: namespace.id } : k));
  writeFileSync(
    outputPath,
    `// Written by \`npm run deploy\` from ${flags.config}, with the account's resource ids and PUBLIC_URL.\n// Edit ${flags.config} and run \`npm run deploy\` again; this file is rewritten each time.\n${JSON.stringify(deployConfig, null, 2)}\n`,
  );
  done.push(`wrote ${outputName}`);

  if (uploadKey) {
    // The key goes to wrangler on stdin only: never printed, never in a file.
    const jwk = await generateSigningJwk('ES256');
    change(['secret', 'put', 'SIGNING_KEYS', '--name', workerName], JSON.stringify({ keys: [jwk] }));
    done.push(`uploaded a new signing key as SIGNING_KEYS (kid ${jwk.kid})`);
    secrets.add('SIGNING_KEYS');
  }

  say('');
  if ((await runner.stream(migrateArgs)).code !== 0) throw new DeployError(`wrangler ${migrateArgs.join(' ')} failed: the Worker was not deployed (the resources above stay; run again once fixed)`);
  done.push(`applied the D1 migrations (${flags.local ? 'local database' : 'remote'})`);
  if ((await runner.stream(deployArgs)).code !== 0) throw new DeployError(`wrangler ${deployArgs.join(' ')} failed`);
  done.push(`deployed Worker "${workerName}"`);

  say('');
  say('Done:');
  for (const d of done) say(`  - ${d}`);
  printLeft(say, { vars, secrets, scope, config, workerName });
  return 0;
}

/** What the walk-through cannot do for the operator: secrets only they hold, and choices only they make. */
function printLeft(say, { vars, secrets, scope, config, workerName }) {
  const left = [];
  const put = (name) => `wrangler secret put ${name} --name ${workerName}`;
  for (const [id, secret] of PROVIDERS) {
    if (vars[id] && !secrets.has(secret)) left.push(`${id} is set: ${put(secret)}`);
  }
  if (vars.OIDC_ISSUER && !secrets.has('OIDC_CLIENT_SECRET')) left.push(`OIDC_ISSUER is set: ${put('OIDC_CLIENT_SECRET')} (unless the provider takes a public client)`);
  if (!PROVIDERS.some(([id]) => vars[id]) && !vars.OIDC_ISSUER) left.push('no sign-in provider configured (GITHUB_CLIENT_ID, GOOGLE_CLIENT_ID, GITLAB_CLIENT_ID, OIDC_ISSUER in [vars], each with its secret): only passwords and mail sign-in');
  const emailBinding = (scope.send_email ?? []).some((b) => b.name === 'EMAIL');
  if (!secrets.has('SMTP_URL') && !emailBinding) left.push(`mail: ${put('SMTP_URL')} (smtps://user:password@host:465), or an EMAIL send_email binding; without it no verification, reset or sign-in mails`);
  if (!secrets.has('TOKEN_ENCRYPTION_KEY')) left.push(`TOKEN_ENCRYPTION_KEY (openssl rand -base64 32 | ${put('TOKEN_ENCRYPTION_KEY')}): needed for authenticator apps${vars.MFA_REQUIRED_ROLES ? ' (MFA_REQUIRED_ROLES is set: the gateway refuses to start without it)' : ''} and stored provider tokens`);
  if (!secrets.has('SCIM_TOKEN')) left.push(`SCIM_TOKEN (optional): openssl rand -base64 32 | ${put('SCIM_TOKEN')} lets a directory provision users (or an admin creates a SCIM token, README "SCIM tokens")`);
  if (!vars.ADMIN_EMAILS) left.push('ADMIN_EMAILS: who becomes admin (README "Deploy checklist", the first admin)');
  // route and routes are inherited by an environment, unlike bindings.
  if (!(scope.routes ?? scope.route ?? config.routes ?? config.route)) left.push(`routes: the Worker answers on workers.dev only; give it PUBLIC_URL's host as a custom domain (routes = [{ pattern = "${new URL(vars.PUBLIC_URL).host}", custom_domain = true }])`);
  say('');
  say(left.length ? 'Left to do:' : 'Nothing left to do.');
  for (const l of left) say(`  - ${l}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    process.exitCode = await deploy(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof DeployError)) throw e;
    process.stderr.write(`\n[deploy] ${e.message}\n`);
    process.exitCode = 1;
  }
}

#!/usr/bin/env node
// A stand-in for `wrangler` in the deploy walk-through's tests: a Cloudflare account kept in a
// JSON file (FAKE_WRANGLER_STATE), answering the list commands in the shapes real wrangler
// prints (d1 list --json: the API's database objects; kv namespace list: {id, title}; secret
// list: [{name, type}]; queues info: text, or a "does not exist" error), and recording every
// call. A command with --local is wrangler's local mode: it runs the real wrangler
// (FAKE_WRANGLER_REAL), which needs no account.
import { spawnSync } from 'node:child_process';
import { randomUUID, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = process.env.FAKE_WRANGLER_STATE;
const state = JSON.parse(readFileSync(file, 'utf8'));
state.calls.push({ args, ci: process.env.CI ?? null });
const save = () => writeFileSync(file, JSON.stringify(state, null, 2));
const fail = (message) => {
  save();
  process.stderr.write(`✘ [ERROR] ${message}\n`);
  process.exit(1);
};
const option = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const stdin = () => readFileSync(0, 'utf8');
const cmd = args.filter((a) => !a.startsWith('--')).slice(0, 3).join(' ');

if (args.includes('--local')) {
  save();
  const r = spawnSync(process.env.FAKE_WRANGLER_REAL, args, { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
if (cmd.startsWith('d1 list')) {
  process.stdout.write(JSON.stringify(state.databases, null, 2) + '\n');
} else if (cmd.startsWith('d1 create')) {
  const name = args[2];
  if (state.databases.some((d) => d.name === name)) fail('A database with that name already exists');
  const db = { uuid: randomUUID(), name, created_at: new Date().toISOString(), version: 'production', num_tables: 0, file_size: 12288, jurisdiction: null };
  state.databases.push(db);
  process.stdout.write(`✅ Successfully created DB '${name}'\n`);
} else if (cmd.startsWith('kv namespace list')) {
  process.stdout.write(JSON.stringify(state.namespaces, null, '  ') + '\n');
} else if (cmd.startsWith('kv namespace create')) {
  const title = args[3];
  if (state.namespaces.some((n) => n.title === title)) fail(`A KV namespace with the title "${title}" already exists.`);
  state.namespaces.push({ id: randomBytes(16).toString('hex'), title, supports_url_encoding: true });
  process.stdout.write('✨ Success!\n');
} else if (cmd.startsWith('queues info')) {
  const q = state.queues.find((x) => x.queue_name === args[2]);
  if (!q) fail(`Queue "${args[2]}" does not exist. To create it, run: wrangler queues create ${args[2]}`);
  process.stdout.write(`Queue Name: ${q.queue_name}\nQueue ID: ${q.queue_id}\n`);
} else if (cmd.startsWith('queues create')) {
  state.queues.push({ queue_name: args[2], queue_id: randomBytes(16).toString('hex') });
  process.stdout.write(`✅ Created queue '${args[2]}'\n`);
} else if (cmd.startsWith('secret list')) {
  const worker = option('--name');
  if (state.secretListError) fail(state.secretListError);
  if (!state.secrets[worker]) fail(`Worker "${worker}" not found.\n\nIf this is a new Worker, run \`wrangler deploy\` first to create it.`);
  process.stdout.write(JSON.stringify(state.secrets[worker].map((name) => ({ name, type: 'secret_text' })), null, '  ') + '\n');
} else if (cmd.startsWith('secret put')) {
  const worker = option('--name');
  state.secrets[worker] = [...new Set([...(state.secrets[worker] ?? []), args[2]])];
  state.uploaded = { ...state.uploaded, [args[2]]: stdin() };
  process.stdout.write(`✨ Success! Uploaded secret ${args[2]}\n`);
} else if (cmd.startsWith('d1 migrations apply') || cmd.startsWith('deploy')) {
  process.stdout.write(`(fake) ${args.join(' ')}\n`);
} else {
  fail(`the fake wrangler does not know: ${args.join(' ')}`);
}
save();

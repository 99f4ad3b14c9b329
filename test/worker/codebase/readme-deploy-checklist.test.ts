/**
 * README's table of contents and deploy checklist stay true to the code: the contents list
 * every `##` section, and the checklist names every setting production requires (found by
 * parsing wrangler.toml's own [vars] with the config schema, as a deploy would), every secret
 * the code reads, and every binding wrangler.toml declares or the Worker reads.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load';
import { configSchema } from '../../../src/config/schema';

const raw = (files: Record<string, string>) => Object.values(files)[0] ?? '';
const README = raw(import.meta.glob('../../../README.md', { query: '?raw', import: 'default', eager: true }) as Record<string, string>);
const WRANGLER_TOML = raw(import.meta.glob('../../../wrangler.toml', { query: '?raw', import: 'default', eager: true }) as Record<string, string>);
const ENV_TS = raw(import.meta.glob('../../../src/env.ts', { query: '?raw', import: 'default', eager: true }) as Record<string, string>);

/** README without its fenced code (a `## ` line inside a code block is no heading). */
const prose = README.replace(/^```[\s\S]*?^```/gm, '');
const headings = prose.split('\n').filter((l) => l.startsWith('## ')).map((l) => l.slice(3).trim());

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
const anchorOf = (heading: string) => heading.toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-');

function section(heading: string): string {
  const start = prose.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README.md has no "## ${heading}" section`);
  const end = prose.indexOf('\n## ', start + 1);
  return prose.slice(start, end < 0 ? undefined : end);
}

const checklist = section('Deploy checklist');
const names = (name: string) => checklist.includes(`\`${name}\``);

/** `[vars]` of wrangler.toml: `NAME = "value"` lines up to the next table. */
function tomlVars(): Record<string, string> {
  const body = /^\[vars\]\n([\s\S]*?)(?=^\[)/m.exec(WRANGLER_TOML)?.[1] ?? '';
  return Object.fromEntries([...body.matchAll(/^([A-Z_]+)\s*=\s*"([^"]*)"/gm)].map((m) => [m[1]!, m[2]!]));
}

/** Valid examples for settings production may require, to find the next one it requires. */
const EXAMPLES: Record<string, string> = {
  PUBLIC_URL: 'https://auth.example.com',
  SIGNING_KEYS: '{"keys":[]}',
};

describe('README table of contents', () => {
  it('lists every ## section, in order, each linking to its anchor', () => {
    const start = prose.indexOf('**Contents**');
    expect(start, 'README has a **Contents** list').toBeGreaterThan(-1);
    expect(start, 'the contents come before the first section').toBeLessThan(prose.indexOf('\n## '));
    const list = prose.slice(start, prose.indexOf('\n## ', start));
    const entries = [...list.matchAll(/^- \[([^\]]+)\]\(#([^)]+)\)/gm)].map((m) => ({ title: m[1]!, anchor: m[2]! }));
    expect(headings.length).toBeGreaterThan(5);
    expect(entries.map((e) => e.title)).toEqual(headings);
    for (const e of entries) expect(e.anchor, e.title).toBe(anchorOf(e.title));
  });
});

describe('README deploy checklist', () => {
  it('comes near the top: right after the quick start', () => {
    expect(headings.indexOf('Deploy checklist')).toBe(headings.indexOf('Quick start') + 1);
  });

  it('names every setting that wrangler.toml as committed still needs for production', () => {
    const env: Record<string, unknown> = { ...tomlVars() };
    expect(env.ENVIRONMENT).toBe('production');
    const required: string[] = [];
    for (let result = parseConfig(env); !result.ok; result = parseConfig(env)) {
      const setting = result.error.setting;
      expect(required, `${setting} is still refused after setting it`).not.toContain(setting);
      required.push(setting);
      expect(names(setting), `the deploy checklist does not name \`${setting}\`, which production requires (${result.error.message})`).toBe(true);
      const example = EXAMPLES[setting];
      if (example === undefined) throw new Error(`${setting} is required in production: give this test a valid example of it`);
      env[setting] = example;
    }
    expect(required.length).toBeGreaterThan(0);
  });

  it('names every secret the code reads, each with what is off without it', () => {
    const marked = [...README.matchAll(/`([A-Z][A-Z0-9_]+)` \(secret\)/g)].map((m) => m[1]!);
    const secrets = new Set([...Object.keys(configSchema.entries).filter((k) => /_SECRET$|_KEYS?$/.test(k)), ...marked]);
    expect(secrets.size).toBeGreaterThan(3);
    const rows = checklist.split('\n').filter((l) => l.startsWith('| `'));
    for (const secret of secrets) {
      expect(Object.keys(configSchema.entries), `${secret} is a setting the code reads`).toContain(secret);
      const row = rows.find((r) => r.split('|')[1]!.includes(`\`${secret}\``));
      expect(row, `the deploy checklist's secrets table has no row naming \`${secret}\``).toBeDefined();
      const without = row!.split('|')[3]?.trim() ?? '';
      expect(without.length, `the row of \`${secret}\` does not say what is off without it`).toBeGreaterThan(10);
    }
  });

  it("names every binding wrangler.toml declares, the placeholder ids to replace, and the Worker's other bindings", () => {
    const declared = [
      ...[...WRANGLER_TOML.matchAll(/^binding\s*=\s*"([^"]+)"/gm)].map((m) => m[1]!),
      ...[...WRANGLER_TOML.matchAll(/^\[\[(?:durable_objects\.bindings|ratelimits|send_email)\]\]\nname\s*=\s*"([^"]+)"/gm)].map((m) => m[1]!),
    ];
    expect(declared.length).toBeGreaterThan(2);
    for (const binding of declared) expect(names(binding), `the deploy checklist does not name the binding \`${binding}\``).toBe(true);
    for (const [, key] of WRANGLER_TOML.matchAll(/^(\w+)\s*=\s*"0{8,}[-0]*"/gm)) {
      expect(names(key!), `wrangler.toml has a placeholder \`${key}\` the deploy checklist does not say to replace`).toBe(true);
    }
    if (/^\[triggers\]/m.test(WRANGLER_TOML)) expect(names('[triggers]'), 'the checklist names the cron ([triggers])').toBe(true);
    const envBody = /export interface Env \{([\s\S]*?)\n\}/.exec(ENV_TS)?.[1] ?? '';
    const read = [...envBody.matchAll(/^\s+([A-Z][A-Z0-9_]*)\??:/gm)].map((m) => m[1]!);
    expect(read).toContain('DB');
    for (const binding of read) {
      // The per-action limiters are one pattern, named as such.
      const shown = /^RATE_LIMITER_/.test(binding) ? 'RATE_LIMITER_<ACTION>' : binding;
      expect(names(shown), `the deploy checklist does not name the binding \`${shown}\` (src/env.ts)`).toBe(true);
    }
  });

  it('covers the domain, the first admin without mail, upgrades and the Free plan quotas', () => {
    for (const [topic, text] of [
      ['a custom domain', 'custom_domain'],
      ['the first admin', 'ADMIN_EMAILS'],
      ['the first admin without mail', 'Without mail'],
      ['migrations before deploy', 'npx wrangler d1 migrations apply DB --remote'],
      ['D1 Time Travel', 'd1 time-travel restore'],
      ['the KV write quota', '1,000 writes a day'],
      ['the D1 quotas', '100,000 rows written'],
    ] as const) {
      expect(checklist, `the deploy checklist covers ${topic}`).toContain(text);
    }
  });
});

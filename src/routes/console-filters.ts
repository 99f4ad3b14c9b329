/**
 * Query fields the console's listings share (Sessions, Audit log): an empty field of a GET form
 * is no filter; times are read as UTC; a user is named by address or id.
 */
import type { Context } from 'hono';
import * as v from 'valibot';
import { directoryReads } from '../auth/directory-reads';
import type { AppEnv } from '../env';
import { findUserByEmail, findUserById } from '../storage/users';

/** An optional text field: trimmed; empty means absent; else `check`ed. */
export const optionalText = <T>(check: v.GenericSchema<string, T>) =>
  v.optional(
    v.pipe(
      v.string(),
      v.trim(),
      v.rawTransform(({ dataset, addIssue, NEVER }) => {
        if (dataset.value === '') return undefined;
        const parsed = v.safeParse(check, dataset.value);
        if (parsed.success) return parsed.output;
        addIssue({ message: parsed.issues[0].message });
        return NEVER;
      }),
    ),
  );

const WHEN = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?Z?$/;

/**
 * A time as a form gives it, read as UTC: `2026-11-23`, `2026-11-23T22:04` or with seconds
 * (what `datetime-local` sends). `end`: the end of what it names (the day, minute or second),
 * for an upper bound that includes it. Null when it is no real date.
 */
export function parseWhen(text: string, end = false): number | null {
  const m = WHEN.exec(text);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map((part) => (part === undefined ? undefined : Number(part)));
  const ms = Date.UTC(y!, mo! - 1, d!, h ?? 0, mi ?? 0, s ?? 0);
  const back = new Date(ms);
  // Date.UTC rolls 2026-02-31 over to March: a date that does not come back as written is no date.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo! - 1 || back.getUTCDate() !== d || (h ?? 0) > 23 || (mi ?? 0) > 59 || (s ?? 0) > 59) return null;
  const step = !end ? 0 : s !== undefined ? 1 : mi !== undefined ? 60 : 86_400;
  return ms / 1000 + step;
}

/** A time field: `YYYY-MM-DD`, optionally `THH:MM[:SS]`, UTC. */
export const whenField = (end = false) =>
  optionalText(
    v.pipe(
      v.string(),
      v.maxLength(25, 'is too long'),
      v.rawTransform(({ dataset, addIssue, NEVER }) => {
        const at = parseWhen(dataset.value, end);
        if (at === null) {
          addIssue({ message: 'must be a date, YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)' });
          return NEVER;
        }
        return at;
      }),
    ),
  );

/** A page number, 1 to `max`. */
export const pageField = (max: number) =>
  v.optional(v.pipe(v.string(), v.regex(/^\d{1,4}$/, 'must be a page number'), v.transform(Number), v.minValue(1, 'must be a page number'), v.maxValue(max, `must be at most ${max}`)), '1');

/** A user as an admin names one: an address (has `@`), or a user id. */
export const userField = optionalText(v.pipe(v.string(), v.maxLength(254, 'is too long (254 characters at most)')));

/**
 * The user an address or id names: `{ id }` when found (an id is taken as it is when
 * `idAsGiven`: events outlive deleted accounts), or null when no account has it.
 */
export async function namedUser(c: Context<AppEnv>, text: string, idAsGiven: boolean): Promise<{ id: string } | null> {
  if (text.includes('@')) return findUserByEmail(c.env.DB, text);
  if (idAsGiven) return { id: text };
  return findUserById(directoryReads(c), text);
}

import { describe, expect, it } from 'vitest';
import { commonWordCount, estimateGuesses } from '../../../src/auth/password-guesses';
import { checkNewPassword, MIN_GUESSES_LOG10, normalisePassword } from '../../../src/auth/password-policy';
import { call, stateSnapshot, uniqueEmail } from '../support/helpers';

const MIN = 12; // the default PASSWORD_MIN_LENGTH

function verdict(password: string) {
  return checkNewPassword(normalisePassword(password), MIN);
}

/** A fixed pseudo-random stream (mulberry32), so the "random passwords" are the same every run. */
function randomPasswords(count: number, length: number, alphabet: string, seed: number): string[] {
  let state = seed;
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: count }, () => Array.from({ length }, () => alphabet[Math.floor(next() * alphabet.length)]).join(''));
}

describe('common passwords at the default minimum of 12 characters', () => {
  const issueExamples = ['password12345678', '123456789012345', 'qwertyuiopasdfgh', 'iloveyou12345678', 'passwordpassword'];

  it.each(issueExamples)('refuses the reported %s', (password) => {
    expect(verdict(password)).toMatchObject({ code: 'common', message: expect.stringMatching(/too common or too easy to guess/) });
  });

  it('refuses them at registration with 400 invalid_request, a clear reason, and stores nothing', async () => {
    for (const password of issueExamples) {
      const before = await stateSnapshot();
      const r = await call('/auth/register', { json: { email: uniqueEmail('common'), password } });
      expect(r.status).toBe(400);
      const body = (await r.json()) as { error: string; error_description: string };
      expect(body.error).toBe('invalid_request');
      expect(body.error_description).toMatch(/^This password is too common or too easy to guess \(it is built from .+\)\. Use a passphrase/);
      expect(await stateSnapshot()).toEqual(before);
    }
  });

  it.each([
    'iloveyou8362!!', // a common password, suffixed with digits and symbols
    'Dragon2024!!!!',
    '!!!sunshine!!!', // padded on both sides
    '####football####',
    'monkey19850412', // a word and a date
    'baseball_1999_', // a word, a year and separators
    'letmein letmein', // a word repeated
    'Superman123456789',
  ])('refuses a common word padded or suffixed with digits or symbols: %s', (password) => {
    expect(verdict(password)?.code).toBe('common');
  });

  it.each([
    'P@ssw0rd2024!!', // leet
    'Passw0rdPassw0rd',
    'SH4D0W12345678',
    'm0nk3y!m0nk3y!',
    'drowssap12345678', // reversed
  ])('refuses leet, capitalised and reversed variants: %s', (password) => {
    expect(verdict(password)?.code).toBe('common');
  });

  it.each([
    'qwertyuiopasdfgh',
    'zxcvbnm,./asdfghjkl',
    '1qaz2wsx3edc4rfv', // columns, each one key over
    '!QAZ@WSX#EDC$RFV', // the same with Shift
    'asdfghjkl;lkjhgfdsa',
    'azertyuiopqsdf', // AZERTY
    'qwertzuiopasdf', // QWERTZ
    '7894561230789456', // the numeric keypad
  ])('refuses keyboard walks: %s', (password) => {
    expect(verdict(password)?.code).toBe('common');
  });

  it.each(['abcdefghijklmnop', '0123456789abc', 'zyxwvutsrqponm', 'ZYXWVUTSRQPONM', '13579135791357', 'acegikmoqsuwy'])('refuses sequences: %s', (password) => {
    expect(verdict(password)?.code).toBe('common');
  });

  it.each(['aaaaaaaaaaaa', 'abcabcabcabc', 'xyz!xyz!xyz!', '😀'.repeat(12), 'Ab1!'.repeat(4), 'x'.repeat(256)])('refuses repeats: %s', (password) => {
    expect(verdict(password)?.code).toBe('common');
  });

  it('says why in words: a sequence, a repeat, a keyboard pattern, a common word', () => {
    expect(verdict('abcdefghijklmnop')?.message).toMatch(/a sequence like abcd or 1234/);
    expect(verdict('aaaaaaaaaaaa')?.message).toMatch(/repeated words or characters/);
    expect(verdict('1qaz2wsx3edc4rfv')?.message).toMatch(/a keyboard pattern like qwerty/);
    expect(verdict('iloveyou8362!!')?.message).toMatch(/a common password or word/);
  });

  it.each([
    'correct horse battery staple',
    'violet tractor umbrella',
    'staple Battery horse correct!',
    'an interop passphrase, long',
    'operations test passphrase 42',
    'Grüße aus München 2024',
    '日本語のパスワードですよね',
    'Mxq8 Ltz2 Pwv7',
    'vR9#tL2$wQ8!',
    'x7Kp2mQv9Lr4',
    'kqmvhzrtpbxw',
    'my cat eats 7 figs at noon',
  ])('accepts a good passphrase or random password: %s', (password) => {
    expect(verdict(password)).toBeNull();
  });

  it('accepts 200 random 12-character passwords and 200 random 16-character lower-case ones', () => {
    const mixed = randomPasswords(200, 12, 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#%&*+-=?', 1);
    const lower = randomPasswords(200, 16, 'abcdefghijklmnopqrstuvwxyz', 2);
    expect([...mixed, ...lower].filter((p) => verdict(p) !== null)).toEqual([]);
  });

  it('uses a ranked list of thousands of base words, at least 4 letters long', () => {
    expect(commonWordCount()).toBe(3000);
    // A word from the last tier still counts: it costs its tier's bound, not a brute force.
    expect(estimateGuesses('aardvark').log10).toBeCloseTo(Math.log10(3000), 5);
    expect(estimateGuesses('password').log10).toBeCloseTo(1, 5);
    expect(MIN_GUESSES_LOG10).toBe(10);
  });

  it('refuses long hostile patterns up to the 256-character maximum', () => {
    for (const password of ['asdfghjkl;lkjhgfdsa'.repeat(14).slice(0, 256), '1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/'.repeat(7).slice(0, 256), 'ab'.repeat(128)]) {
      expect(verdict(password)?.code).toBe('common');
    }
  });
});

import { describe, expect, it } from 'vitest';
import { CURRENT_SCRYPT as PRODUCTION_SCRYPT } from '../../../src/auth/password-cost';
import { CURRENT_SCRYPT, hashPassword, verifyPassword } from '../../../src/auth/password-hash';
import { checkNewPassword, normalisePassword, PASSWORD_MAX_LENGTH } from '../../../src/auth/password-policy';

async function pbkdf2Hash(password: string, iterations: number): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, ['deriveBits']);
  const bits = new Uint8Array(await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, key, 256));
  const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  return `pbkdf2-sha256$i=${iterations}$${b64(salt)}$${b64(bits)}`;
}

describe('password hashing', () => {
  it('pins the production parameters: scrypt N=2^14 r=8 p=5, 16-byte salt, 32-byte key', async () => {
    // The test setup gives every other test cheap parameters; production's are the module's own.
    const production = PRODUCTION_SCRYPT;
    expect(production).toEqual({ N: 16384, r: 8, p: 5 });
    expect(CURRENT_SCRYPT).not.toEqual(production);
    const hash = await hashPassword('pinned parameters test', production);
    expect(await verifyPassword('pinned parameters test', hash)).toEqual({ ok: true, needsRehash: true });
    const [alg, params, salt, key] = hash.split('$');
    expect(alg).toBe('scrypt');
    expect(params).toBe('N=16384,r=8,p=5');
    expect(salt).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('verifies the right password only, with fresh salts', async () => {
    const a = await hashPassword('one good passphrase');
    const b = await hashPassword('one good passphrase');
    expect(a).not.toBe(b);
    expect(await verifyPassword('one good passphrase', a)).toEqual({ ok: true, needsRehash: false });
    expect(await verifyPassword('one good passphrasE', a)).toEqual({ ok: false, needsRehash: false });
  });

  it('asks for a rehash of valid hashes made with other parameters', async () => {
    const weak = await hashPassword('legacy passphrase here', { N: 1024, r: 8, p: 1 });
    expect(await verifyPassword('legacy passphrase here', weak)).toEqual({ ok: true, needsRehash: true });
    const legacy = await pbkdf2Hash('legacy passphrase here', 1000);
    expect(await verifyPassword('legacy passphrase here', legacy)).toEqual({ ok: true, needsRehash: true });
    expect(await verifyPassword('wrong', legacy)).toEqual({ ok: false, needsRehash: false });
  });

  it('refuses malformed or abusive stored hashes without throwing', async () => {
    for (const stored of ['', 'plain', 'md5$x$y$z', 'scrypt$N=abc$a$b', 'scrypt$N=4194304,r=8,p=1$AAAA$AAAA', 'pbkdf2-sha256$i=10000000$AAAA$AAAA']) {
      expect(await verifyPassword('x', stored)).toEqual({ ok: false, needsRehash: false });
    }
  });
});

describe('password policy', () => {
  it('counts characters after NFKC normalisation, never truncates', () => {
    expect(normalisePassword('ｐａｓｓｗｏｒｄ')).toBe('password');
    expect(checkNewPassword('a'.repeat(11), 12)?.code).toBe('too_short');
    expect(checkNewPassword('a long enough pass', 12)).toBeNull();
    // 12 astral characters are 24 UTF-16 units but 12 characters.
    const emoji = [...'😀🐢🌵🎻🚲🧀🦉🍋🛶🎲🪁🧭'];
    expect(checkNewPassword(emoji.join(''), 12)).toBeNull();
    expect(checkNewPassword(emoji.slice(1).join(''), 12)?.code).toBe('too_short');
    // A long passphrase of distinct words, cut at exactly the maximum.
    const long = Array.from({ length: 40 }, (_, i) => `w${i.toString(36)}rd${(i * 7919).toString(36)}`).join(' ');
    expect(checkNewPassword([...long].slice(0, PASSWORD_MAX_LENGTH).join(''), 12)).toBeNull();
    expect(checkNewPassword([...long].slice(0, PASSWORD_MAX_LENGTH + 1).join(''), 12)?.code).toBe('too_long');
  });

  it('refuses common passwords, case-insensitively', () => {
    for (const p of ['password1234', 'qwertyuiop123', 'Password123!', '1234567890', 'iloveyou123']) {
      expect(checkNewPassword(normalisePassword(p), 8)?.code).toBe('common');
    }
    expect(checkNewPassword('qwertyuiop', 8)?.code).toBe('common');
    expect(checkNewPassword('PASSWORD123', 8)?.code).toBe('common');
    expect(checkNewPassword('1234567890', 8)?.code).toBe('common');
    expect(checkNewPassword('violet tractor umbrella', 8)).toBeNull();
  });
});

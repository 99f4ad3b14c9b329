/**
 * Sign-in codes when the mail relay fails: the request answers 202 as always (the work is after
 * the answer), and the code that could not be sent is not kept. Otherwise it would hold the
 * address's one live code, and the once-a-minute limit would silently swallow the retry the
 * person makes when no mail arrives.
 */
import { describe, expect, it } from 'vitest';
import { call, countRows, GOOD_PASSWORD, type TestEnv } from '../support/helpers';
import { failMailFor, mailEnv, mailFor, recoverMail, uniqueEmail } from '../support/mail';

const e: TestEnv = mailEnv({ EMAIL_VERIFICATION: 'off', EMAIL_LOGIN: 'enabled' });

describe('a sign-in code the relay could not send', () => {
  it('is not kept: the retry right after the relay recovers sends a fresh code', async () => {
    const email = uniqueEmail('code-outage');
    expect((await call('/auth/register', { env: e, json: { email, password: GOOD_PASSWORD } })).status).toBe(201);
    await failMailFor(email);
    const down = await call('/auth/login/email-code', { env: e, json: { email } });
    expect(down.status).toBe(202);
    expect(await countRows('email_codes', 'email = ?', email)).toBe(0);

    await recoverMail(email);
    const retry = await call('/auth/login/email-code', { env: e, json: { email } });
    expect(retry.status).toBe(202);
    expect(await countRows('email_codes', 'email = ?', email)).toBe(1);
    const mails = await mailFor(email);
    expect(mails.filter((m) => /\b\d{8}\b/.test(m.text ?? ''))).toHaveLength(1);
  });
});

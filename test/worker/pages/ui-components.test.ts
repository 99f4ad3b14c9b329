/** The UI kit (src/ui/components.tsx): the wiring that screen readers and no-JS browsers rely on. */
import { describe, expect, it } from 'vitest';
import { BackToApp, ButtonLink, ErrorBox, Field, Notice, Page, PasswordField, PrimaryButton } from '../../../src/ui/components';

const html = (el: unknown) => String(el);

describe('UI kit', () => {
  it('Page: app name in the header and title, one nonce on style and script, accent rules only when set', () => {
    const page = html(Page({ title: 'Sign in', nonce: 'n0nce', brand: { name: 'Acme <Books>', accent: '#ffd400', logoUrl: '/logo.svg' }, children: 'x' }));
    expect(page).toContain('<title>Sign in · Acme &lt;Books&gt;</title>');
    expect(page).toMatch(/<header class="brand"><img src="\/logo.svg" alt="" height="36"\/?><span>Acme &lt;Books&gt;<\/span><\/header>/);
    expect(page.match(/<(style|script)[^>]*>/g)).toEqual(['<style nonce="n0nce">', '<script nonce="n0nce">']);
    expect(page).toContain(':root{--accent:#ffd400;--on-accent:#000000;');
    const plain = html(Page({ title: 'Sign in', nonce: 'n', brand: { name: 'Acme' }, children: 'x' }));
    expect(plain).not.toContain('--accent:#ffd400');
    expect(plain).not.toContain('<img');
  });

  it('Field: label for the input, hint and error read with it, invalid marked', () => {
    const f = html(Field({ id: 'e', name: 'email', label: 'Email', type: 'email', hint: 'We never share it.', error: 'Required.', describedBy: 'form-error' }));
    expect(f).toContain('<label for="e">Email</label>');
    expect(f).toMatch(/<input id="e" name="email" type="email" required=""[^>]* aria-invalid="true" aria-describedby="form-error e-hint e-error"/);
    expect(f).toContain('<p class="hint" id="e-hint">We never share it.</p>');
    expect(f).toContain('<p class="field-error" id="e-error">Required.</p>');
    const bare = html(Field({ id: 'n', name: 'name', label: 'Name', required: false }));
    expect(bare).not.toContain('aria-describedby');
    expect(bare).not.toContain('required');
    expect(bare).not.toContain('aria-invalid');
  });

  it('PasswordField: a plain password input; the show toggle is hidden until the script reveals it', () => {
    const f = html(PasswordField({ id: 'pw', name: 'password', label: 'Password', autocomplete: 'current-password' }));
    expect(f).toMatch(/<input id="pw" name="password" type="password" autocomplete="current-password"/);
    expect(f).toMatch(/<button type="button" class="secondary reveal" hidden="" data-reveal="pw" aria-controls="pw" aria-pressed="false" aria-label="Show password">Show<\/button>/);
  });

  it('banners: Notice is role=status, ErrorBox role=alert with id form-error, both absent without a message', () => {
    expect(html(Notice({ message: 'Done.' }))).toBe('<p class="banner" role="status" id="notice">Done.</p>');
    expect(html(ErrorBox({ message: 'No.' }))).toBe('<div class="error" role="alert" id="form-error">No.</div>');
    expect(Notice({ message: null })).toBeNull();
    expect(ErrorBox({})).toBeNull();
  });

  it('buttons and links', () => {
    expect(html(PrimaryButton({ children: 'Go' }))).toBe('<button type="submit" class="button primary">Go</button>');
    expect(html(ButtonLink({ href: '/a?x=1&y=2', data: { provider: 'gh' }, children: 'GitHub' }))).toBe('<a class="button secondary" href="/a?x=1&amp;y=2" data-provider="gh">GitHub</a>');
    expect(html(BackToApp({ href: '/app', appName: 'Acme' }))).toContain('href="/app" id="back-to-app"');
    expect(html(BackToApp({ href: '/app', appName: 'Acme' }))).toContain('Back to Acme');
  });
});

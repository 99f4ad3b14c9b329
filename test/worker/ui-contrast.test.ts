import { describe, expect, it } from 'vitest';
import { STYLES } from '../../src/ui/layout';

/** WCAG 2 relative luminance of a #rrggbb colour (the formula is short; no library needed for it). */
function luminance(hex: string): number {
  const channel = (i: number) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
}

function contrast(a: string | undefined, b: string | undefined): number {
  expect(a).toMatch(/^#[0-9a-f]{6}$/i);
  expect(b).toMatch(/^#[0-9a-f]{6}$/i);
  const [la, lb] = [luminance(a!), luminance(b!)];
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

/** The custom properties of the light `:root` block and of the dark-scheme one. */
function palettes(): Record<'light' | 'dark', Record<string, string>> {
  const block = (re: RegExp) => {
    const body = STYLES.match(re)?.[1] ?? '';
    const full = (hex: string) => (hex.length === 4 ? `#${[...hex.slice(1)].map((d) => d + d).join('')}` : hex);
    return Object.fromEntries([...body.matchAll(/--([a-z-]+):(#[0-9a-f]{6}|#[0-9a-f]{3})\b/gi)].map((m) => [m[1], full(m[2] ?? '')]));
  };
  return {
    light: block(/^:root\{([^}]*)\}/m),
    dark: block(/prefers-color-scheme:dark\)\{:root\{([^}]*)\}/),
  };
}

describe('page colours', () => {
  it.each(['light', 'dark'] as const)('%s scheme: text on buttons, body text and errors reach WCAG AA (4.5:1)', (scheme) => {
    const p = palettes()[scheme];
    expect(Object.keys(p)).toEqual(expect.arrayContaining(['fg', 'muted', 'bg', 'card', 'accent', 'on-accent', 'err']));
    expect(STYLES).toMatch(/button,\.button\{[^}]*background:var\(--accent\);color:var\(--on-accent\)/);
    expect(contrast(p['on-accent'], p.accent)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(p.accent, p.card)).toBeGreaterThanOrEqual(4.5); // secondary buttons, links
    expect(contrast(p.fg, p.card)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(p.muted, p.card)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(p.err, p.card)).toBeGreaterThanOrEqual(4.5);
  });
});

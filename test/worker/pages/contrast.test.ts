import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { STYLES, accentStyles } from '../../../src/ui/styles';
import { contrastRatio } from '../../../src/util/contrast';

/** WCAG 2 relative luminance of a #rrggbb colour (written out here too, so the test does not trust src/util/contrast). */
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
function palettes(css: string): Record<'light' | 'dark', Record<string, string>> {
  const block = (re: RegExp) => {
    const body = css.match(re)?.[1] ?? '';
    const full = (hex: string) => (hex.length === 4 ? `#${[...hex.slice(1)].map((d) => d + d).join('')}` : hex);
    return Object.fromEntries([...body.matchAll(/--([a-z-]+):(#[0-9a-f]{6}|#[0-9a-f]{3})\b/gi)].map((m) => [m[1], full(m[2] ?? '')]));
  };
  return {
    light: block(/^:root\{([^}]*)\}/m),
    dark: block(/prefers-color-scheme:dark\)\{:root\{([^}]*)\}/),
  };
}

describe('page colours', () => {
  it.each(['light', 'dark'] as const)('%s scheme: text on buttons, body text, links, banners and errors reach WCAG AA (4.5:1)', (scheme) => {
    const p = palettes(STYLES)[scheme];
    expect(Object.keys(p)).toEqual(expect.arrayContaining(['fg', 'muted', 'bg', 'card', 'accent', 'on-accent', 'link', 'err', 'err-bg', 'ok-bg', 'field']));
    expect(STYLES).toMatch(/button,\.button\{[^}]*background:var\(--accent\);color:var\(--on-accent\)/);
    expect(STYLES).toMatch(/\.secondary\{[^}]*color:var\(--link\)/);
    expect(STYLES).toMatch(/\.error\{background:var\(--err-bg\);[^}]*color:var\(--err\)/);
    expect(STYLES).toMatch(/\.banner\{background:var\(--ok-bg\);[^}]*color:var\(--fg\)/);
    // The danger zone's buttons are error-coloured text on the card; the line under a heading is muted text.
    expect(STYLES).toMatch(/\.danger\{background:transparent;color:var\(--err\)/);
    expect(STYLES).toMatch(/\.lede\{color:var\(--muted\)/);
    expect(contrast(p['on-accent'], p.accent)).toBeGreaterThanOrEqual(4.5);
    for (const surface of [p.card, p.bg]) {
      expect(contrast(p.link, surface)).toBeGreaterThanOrEqual(4.5); // secondary buttons, links
      expect(contrast(p.fg, surface)).toBeGreaterThanOrEqual(4.5);
      expect(contrast(p.muted, surface)).toBeGreaterThanOrEqual(4.5);
    }
    expect(contrast(p.err, p.card)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(p.err, p['err-bg'])).toBeGreaterThanOrEqual(4.5);
    expect(contrast(p.fg, p['ok-bg'])).toBeGreaterThanOrEqual(4.5);
    // Input borders are user-interface components: WCAG 1.4.11 asks 3:1.
    expect(contrast(p.field, p.card)).toBeGreaterThanOrEqual(3);
  });
});

describe('the console\'s colours', () => {
  it.each(['light', 'dark'] as const)('%s scheme: its navigation and labels use only pairs that reach 4.5:1', (scheme) => {
    const p = palettes(STYLES)[scheme];
    // The current area in the navigation: body text on the page background.
    expect(STYLES).toMatch(/\.console-nav a\[aria-current=page\]\{[^}]*color:var\(--fg\)/);
    // A label ("disabled", a failed event): body text on the card, or error text on the error background.
    expect(STYLES).toMatch(/\.tag\{[^}]*color:var\(--fg\)/);
    expect(STYLES).toMatch(/\.tag\.warn\{color:var\(--err\);background:var\(--err-bg\)/);
    expect(contrast(p.fg, p.bg)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(p.fg, p.card)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(p.err, p['err-bg'])).toBeGreaterThanOrEqual(4.5);
    // No colour of its own: every colour in the console's rules is one of the palette's variables.
    const consoleRules = STYLES.slice(STYLES.indexOf('.console-nav'));
    expect(consoleRules).not.toMatch(/#[0-9a-f]{3,6}\b/i);
  });
});

describe('the app accent (APP_ACCENT)', () => {
  const hex = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })).map((rgb) => `#${rgb.map((n) => n.toString(16).padStart(2, '0')).join('')}`);

  it('any #rrggbb: button text on the accent and link text reach 4.5:1 in both schemes', () => {
    fc.assert(
      fc.property(hex, (accent) => {
        const css = accentStyles(accent);
        const base = palettes(STYLES);
        const extra = palettes(css);
        for (const scheme of ['light', 'dark'] as const) {
          const p = { ...base[scheme], ...extra[scheme] };
          expect(extra[scheme].accent).toBe(accent);
          expect(contrast(p['on-accent'], p.accent)).toBeGreaterThanOrEqual(4.5);
          expect(contrast(p.link, p.card)).toBeGreaterThanOrEqual(4.5);
          expect(contrast(p.link, p.bg)).toBeGreaterThanOrEqual(4.5);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('picks black text on light accents and white on dark ones, and the accent as link colour where readable', () => {
    expect(palettes(accentStyles('#ffd400')).light['on-accent']).toBe('#000000');
    expect(palettes(accentStyles('#0b3d91')).light['on-accent']).toBe('#ffffff');
    expect(palettes(accentStyles('#0b3d91')).light.link).toBe('#0b3d91'); // dark blue reads on white
    expect(palettes(accentStyles('#0b3d91')).dark.link).not.toBe('#0b3d91'); // but not on the dark card
    expect(contrastRatio('#ffffff', '#000000')).toBeCloseTo(21, 5);
  });

  it('adds nothing for a value that is not #rrggbb (no way into the stylesheet)', () => {
    expect(accentStyles(undefined)).toBe('');
    expect(accentStyles('red')).toBe('');
    expect(accentStyles('#fff}body{display:none')).toBe('');
    expect(accentStyles('#ffffff</style>')).toBe('');
  });
});

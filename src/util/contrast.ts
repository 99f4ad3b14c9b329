/**
 * WCAG 2 colour contrast for `#rrggbb` colours. Config uses it to refuse nothing but to pick the
 * text colour on the app's accent; the UI uses it to decide where the accent is readable as text.
 * Hand-written because the formula is a few lines and no installed package carries it.
 *
 * @example
 * contrastRatio('#ffffff', '#000000'); // 21
 * textOn('#ffd400'); // '#000000': black text reads better on yellow
 */

/** `#rrggbb` exactly (lower or upper case). */
export const HEX_COLOUR = /^#[0-9a-f]{6}$/i;

/** WCAG 2 relative luminance of a `#rrggbb` colour, 0 (black) to 1 (white). */
export function luminance(hex: string): number {
  const channel = (i: number) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
}

/** The WCAG 2 contrast ratio of two `#rrggbb` colours, 1 to 21. */
export function contrastRatio(a: string, b: string): number {
  const [la, lb] = [luminance(a), luminance(b)];
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

/**
 * Black or white, whichever contrasts more with `background`. One of them always reaches at
 * least 4.58:1 (the worst case is a background of luminance ~0.18), so text on any colour
 * meets WCAG AA.
 */
export function textOn(background: string): '#000000' | '#ffffff' {
  return contrastRatio(background, '#000000') >= contrastRatio(background, '#ffffff') ? '#000000' : '#ffffff';
}

/**
 * Where a session was started, for people: "Germany (DE)" from the country code the edge gave
 * its sign-in (http/client.ts `clientCountry`). The name comes from the runtime's own
 * `Intl.DisplayNames` (workerd carries ICU's region names), so no country table ships with the
 * gateway; a code the runtime has no name for is shown alone. Country only: the gateway keeps
 * no city and no coordinates.
 */

let regions: Intl.DisplayNames | undefined;

export function placeLabel(country: string | null): string {
  if (country === null) return 'Unknown';
  // Cloudflare's code for Tor exit nodes: no region, so not a name ICU could give.
  if (country === 'T1') return 'Tor network';
  regions ??= new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });
  const name = regions.of(country);
  return name === undefined || name === country ? country : `${name} (${country})`;
}

/**
 * A URL as a `return_to` value in a query string, escaped only where a query needs it: `/`, `:`,
 * `?` and `=` stay as they are, so the URL of a gateway page that holds it
 * (`/auth/sso?return_to=https://…`) passes http/return-to.ts `safeReturnTo`, which refuses
 * encoded slashes. Its own module: the proxy needs it on the hot path, return-to.ts is not there.
 */
export function queryValue(value: string): string {
  return encodeURIComponent(value).replace(/%(2F|3A|3F|3D)/gi, (m) => decodeURIComponent(m));
}

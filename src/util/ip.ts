/**
 * IP addresses and CIDR ranges, for a route policy's `ip` fact.
 *
 * Hand-written rather than ipaddr.js: the policy needs only "parse an address, parse a range,
 * is the address in it", and this runs in the start-up bundle, where ipaddr.js (its whole
 * special-range tables and formatting) would cost several times these few lines. IPv4 is strict
 * dotted-quad (no leading zeros, which some parsers read as octal); IPv6 is RFC 4291 text with
 * `::` and an optional dotted IPv4 tail, without zone ids. An IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.1`) is the IPv4 address it maps, so it matches IPv4 ranges and not IPv6 ones.
 */

export interface IpAddress {
  v4: boolean;
  /** 4 bytes for IPv4, 16 for IPv6. */
  bytes: Uint8Array;
}

export interface IpRange extends IpAddress {
  /** Prefix length in bits. */
  bits: number;
}

const OCTET = /^(?:0|[1-9]\d{0,2})$/;
const HEXTET = /^[0-9a-f]{1,4}$/i;

function parseV4(text: string, into: Uint8Array, at: number): boolean {
  const parts = text.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!OCTET.test(p)) return false;
    const n = Number(p);
    if (n > 255) return false;
    into[at + i] = n;
  }
  return true;
}

function parseV6(text: string): Uint8Array | null {
  let hex = text;
  // A dotted IPv4 tail (::ffff:192.0.2.1) stands for the last two groups.
  const lastColon = hex.lastIndexOf(':');
  const lastPart = hex.slice(lastColon + 1);
  if (lastPart.includes('.')) {
    const v4 = new Uint8Array(4);
    if (!parseV4(lastPart, v4, 0)) return null;
    hex = `${hex.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const halves = hex.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length === 1 || halves[1] === '' ? [] : halves[1]!.split(':');
  if (halves.length === 2 ? head.length + tail.length > 7 : head.length !== 8) return null;
  const bytes = new Uint8Array(16);
  const write = (groups: string[], start: number): boolean => {
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (!HEXTET.test(g)) return false;
      const n = parseInt(g, 16);
      bytes[start + i * 2] = n >> 8;
      bytes[start + i * 2 + 1] = n & 0xff;
    }
    return true;
  };
  return write(head, 0) && write(tail, 16 - tail.length * 2) ? bytes : null;
}

/** The address `text` names, or null if it is not a plain IPv4 or IPv6 address. */
export function parseIp(text: string): IpAddress | null {
  if (text.includes(':')) {
    const bytes = parseV6(text);
    if (!bytes) return null;
    // ::ffff:a.b.c.d is the IPv4 address a.b.c.d.
    const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
    return mapped ? { v4: true, bytes: bytes.slice(12) } : { v4: false, bytes };
  }
  const bytes = new Uint8Array(4);
  return parseV4(text, bytes, 0) ? { v4: true, bytes } : null;
}

/** Why `text` is not a CIDR range, or the range (a bare address is a range of one). */
export function parseCidr(text: string): IpRange | string {
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const address = parseIp(addressText);
  if (!address) return `"${addressText}" is not an IPv4 or IPv6 address`;
  // The prefix length counts in the family the address was written in (::ffff:a.b.c.d/120 is a.b.c.0/24).
  const writtenV6 = addressText.includes(':');
  const max = writtenV6 ? 128 : 32;
  if (slash === -1) return { ...address, bits: address.v4 ? 32 : 128 };
  const lengthText = text.slice(slash + 1);
  if (!/^(?:0|[1-9]\d{0,2})$/.test(lengthText) || Number(lengthText) > max) return `the prefix length must be a whole number from 0 to ${max}`;
  const written = Number(lengthText);
  if (address.v4 && writtenV6 && written < 96) return 'an IPv4-mapped range must be /96 or longer';
  const range = { ...address, bits: address.v4 && writtenV6 ? written - 96 : written };
  // Host bits set (10.0.0.1/8) usually means a typo for another range: refuse rather than guess.
  for (let bit = range.bits; bit < range.bytes.length * 8; bit++) {
    if (range.bytes[bit >> 3]! & (0x80 >> (bit & 7))) return `host bits are set after /${range.bits}: write the network address`;
  }
  return range;
}

/** True if `address` lies in `range` (never across families). */
export function inRange(address: IpAddress, range: IpRange): boolean {
  if (address.v4 !== range.v4) return false;
  const whole = range.bits >> 3;
  for (let i = 0; i < whole; i++) if (address.bytes[i] !== range.bytes[i]) return false;
  const rest = range.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (address.bytes[whole]! & mask) === (range.bytes[whole]! & mask);
}

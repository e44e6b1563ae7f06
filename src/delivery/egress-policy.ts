/**
 * The egress (SSRF) policy: which IP addresses a webhook may be delivered to, and the write-time
 * check of a destination URL.
 *
 * Webhook URLs are chosen by strangers (subscribers), but the requests leave from the
 * application's own servers. Without a guard, a subscriber could point a webhook at the cloud
 * metadata endpoint, at an admin port on localhost or at any host of the private network, and read
 * the answers back through the delivery attempts. The rule here is an allowlist, not a blocklist:
 * **only global unicast addresses outside every special-purpose range are allowed**. Anything the
 * tables below do not know about as public is refused, so a forgotten range fails closed.
 *
 * This module is pure (no DNS, no sockets). The connect-time half of the guard, which judges the
 * address actually dialled after DNS resolution, is `guarded-connector.ts`.
 */

import { isIP } from 'node:net';

import { HookdError } from '../errors.js';

/** Which destinations deliveries may reach. */
export interface EgressPolicy {
  /**
   * Re-admit loopback, RFC 1918 / ULA private ranges and CGNAT (100.64.0.0/10), for development
   * and tests. Link-local (cloud metadata), multicast, unspecified and every reserved or
   * documentation range stay refused. Default `false`; never enable it where subscribers are
   * untrusted.
   */
  readonly allowPrivateDestinations: boolean;
}

/** Why the guard refused a destination. */
export type EgressRefusalCause =
  /** The address is loopback, private, link-local, reserved … anything but public unicast. */
  | 'internal_address'
  /** The host is not an IP literal the guard can judge (garbage, or an IPv6 zone id). */
  | 'malformed_address'
  /** DNS resolution failed (or timed out). */
  | 'lookup_failed'
  /** DNS resolution returned no addresses. */
  | 'empty_answer';

/** The verdict on one IP address. `reason` is for operators' logs only, never for subscribers. */
export type AddressVerdict =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly cause: EgressRefusalCause; readonly reason: string };

/** The strict policy: public unicast destinations only. This is the default everywhere. */
export const STRICT_EGRESS_POLICY: EgressPolicy = Object.freeze({
  allowPrivateDestinations: false,
});

/** Longest destination URL accepted at write time (the raw text and its normalised form). */
export const MAX_DESTINATION_URL_LENGTH = 2048;

// ---------------------------------------------------------------------------------------------
// Range tables. Sources: the IANA IPv4 and IPv6 Special-Purpose Address Registries (every entry
// whose "Globally Reachable" is False, plus a few that are nominally reachable but that no webhook
// receiver legitimately lives in: NAT64 64:ff9b::/96, 6to4, the deprecated 6to4 relay anycast and
// the whole IETF protocol block 2001::/23), the multicast and reserved blocks, and for IPv6 the
// rule that only 2000::/3 is allocated as global unicast.
//
// Order matters: the first matching entry decides, so narrower entries that must be judged
// differently from a wider one (::1 inside ::/96, 255.255.255.255 inside 240/4) come first.
// `privateUse` marks the only ranges that `allowPrivateDestinations` re-admits.
// ---------------------------------------------------------------------------------------------

interface RangeSpec {
  readonly cidr: string;
  readonly name: string;
  readonly privateUse?: true;
}

const IPV4_RANGES: readonly RangeSpec[] = [
  { cidr: '0.0.0.0/32', name: 'unspecified' },
  { cidr: '0.0.0.0/8', name: '"this network"' },
  { cidr: '10.0.0.0/8', name: 'private-use (RFC 1918)', privateUse: true },
  { cidr: '100.64.0.0/10', name: 'shared address space (CGNAT, RFC 6598)', privateUse: true },
  { cidr: '127.0.0.0/8', name: 'loopback', privateUse: true },
  { cidr: '169.254.0.0/16', name: 'link-local (includes cloud metadata endpoints)' },
  { cidr: '172.16.0.0/12', name: 'private-use (RFC 1918)', privateUse: true },
  { cidr: '192.0.0.0/24', name: 'IETF protocol assignments (includes DS-Lite, NAT64 discovery)' },
  { cidr: '192.0.2.0/24', name: 'documentation (TEST-NET-1)' },
  { cidr: '192.88.99.0/24', name: 'deprecated 6to4 relay anycast' },
  { cidr: '192.168.0.0/16', name: 'private-use (RFC 1918)', privateUse: true },
  { cidr: '198.18.0.0/15', name: 'benchmarking' },
  { cidr: '198.51.100.0/24', name: 'documentation (TEST-NET-2)' },
  { cidr: '203.0.113.0/24', name: 'documentation (TEST-NET-3)' },
  { cidr: '224.0.0.0/4', name: 'multicast' },
  { cidr: '255.255.255.255/32', name: 'limited broadcast' },
  { cidr: '240.0.0.0/4', name: 'reserved' },
];

// ::ffff:0:0/96 (IPv4-mapped) is not in this table: such addresses are unmapped and judged as the
// IPv4 address they denote, because that is where a socket connecting to them actually goes.
const IPV6_RANGES: readonly RangeSpec[] = [
  { cidr: '::/128', name: 'unspecified' },
  { cidr: '::1/128', name: 'loopback', privateUse: true },
  { cidr: '::ffff:0:0:0/96', name: 'IPv4-translated (SIIT)' },
  { cidr: '::/96', name: 'IPv4-compatible (deprecated)' },
  { cidr: '64:ff9b::/96', name: 'NAT64 well-known prefix' },
  { cidr: '64:ff9b:1::/48', name: 'NAT64 local-use prefix' },
  { cidr: '100::/64', name: 'discard-only' },
  { cidr: '100:0:0:1::/64', name: 'dummy prefix' },
  { cidr: '2001::/32', name: 'Teredo' },
  { cidr: '2001:2::/48', name: 'benchmarking' },
  { cidr: '2001:10::/28', name: 'ORCHID (deprecated)' },
  { cidr: '2001:20::/28', name: 'ORCHIDv2' },
  { cidr: '2001::/23', name: 'IETF protocol assignments' },
  { cidr: '2001:db8::/32', name: 'documentation' },
  { cidr: '2002::/16', name: '6to4' },
  { cidr: '3fff::/20', name: 'documentation' },
  { cidr: '5f00::/16', name: 'SRv6 SIDs' },
  { cidr: 'fc00::/7', name: 'unique local (ULA)', privateUse: true },
  { cidr: 'fe80::/10', name: 'link-local' },
  { cidr: 'fec0::/10', name: 'site-local (deprecated)' },
  { cidr: 'ff00::/8', name: 'multicast' },
];

/** IANA allocates IPv6 global unicast from 2000::/3 only; everything else is refused. */
const IPV6_GLOBAL_UNICAST = '2000::/3';
const IPV4_MAPPED = '::ffff:0:0/96';

interface CompiledRange {
  readonly cidr: string;
  readonly name: string;
  readonly privateUse: boolean;
  readonly network: bigint;
  readonly shift: bigint;
}

interface CompiledTables {
  readonly v4: readonly CompiledRange[];
  readonly v6: readonly CompiledRange[];
  readonly v6GlobalUnicast: CompiledRange;
  readonly v4Mapped: CompiledRange;
}

// Built on first use, not at import time, and shared by every policy: the policy only decides
// whether `privateUse` entries are re-admitted, so one table serves both.
let compiledTables: CompiledTables | undefined;

function tables(): CompiledTables {
  compiledTables ??= Object.freeze({
    v4: Object.freeze(IPV4_RANGES.map((spec) => compileRange(spec, 32))),
    v6: Object.freeze(IPV6_RANGES.map((spec) => compileRange(spec, 128))),
    v6GlobalUnicast: compileRange({ cidr: IPV6_GLOBAL_UNICAST, name: 'global unicast' }, 128),
    v4Mapped: compileRange({ cidr: IPV4_MAPPED, name: 'IPv4-mapped' }, 128),
  });
  return compiledTables;
}

function compileRange(spec: RangeSpec, bits: 32 | 128): CompiledRange {
  const [base = '', lengthText = ''] = spec.cidr.split('/');
  const length = Number(lengthText);
  const network = bits === 32 ? parseIPv4(base) : parseIPv6(base);
  if (network === undefined || !Number.isInteger(length) || length < 0 || length > bits) {
    // The tables are constants in this file; this only fires if someone mistypes one.
    throw new HookdError('HOOKD_ERR_INTERNAL', `invalid egress range ${spec.cidr}`);
  }
  const shift = BigInt(bits - length);
  return Object.freeze({
    cidr: spec.cidr,
    name: spec.name,
    privateUse: spec.privateUse === true,
    network: network >> shift,
    shift,
  });
}

function inRange(address: bigint, range: CompiledRange): boolean {
  return address >> range.shift === range.network;
}

// ---------------------------------------------------------------------------------------------
// Parsing. `net.isIP` validates the syntax first; these turn validated text into integers so the
// range checks are exact bit comparisons, with no string tricks.
// ---------------------------------------------------------------------------------------------

/** Dotted-quad text → 32-bit integer (as a bigint); undefined if it is not exactly that. */
function parseIPv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

/** IPv6 text (no zone id, optional dotted-quad tail) → 128-bit integer; undefined if invalid. */
function parseIPv6(text: string): bigint | undefined {
  let body = text;
  let tail: bigint[] = [];
  const lastColon = body.lastIndexOf(':');
  if (lastColon === -1) return undefined;
  const last = body.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = parseIPv4(last);
    if (v4 === undefined) return undefined;
    tail = [v4 >> 16n, v4 & 0xffffn];
    // Drop the dotted tail but keep a "::" right before it: "::1.2.3.4" → "::",
    // "a::1.2.3.4" → "a::", "1:2:3:4:5:6:1.2.3.4" → "1:2:3:4:5:6".
    body = body.slice(0, lastColon + 1);
    if (!body.endsWith('::')) body = body.slice(0, -1);
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (part: string | undefined): bigint[] | undefined => {
    if (part === undefined || part === '') return [];
    const groups: bigint[] = [];
    for (const group of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
      groups.push(BigInt(`0x${group}`));
    }
    return groups;
  };
  const head = parseGroups(halves[0]);
  const rest = halves.length === 2 ? parseGroups(halves[1]) : [];
  if (head === undefined || rest === undefined) return undefined;
  const explicit = head.length + rest.length + tail.length;
  let groups: bigint[];
  if (halves.length === 2) {
    if (explicit > 7) return undefined;
    groups = [...head, ...new Array<bigint>(8 - explicit).fill(0n), ...rest, ...tail];
  } else {
    if (explicit !== 8) return undefined;
    groups = [...head, ...tail];
  }
  return groups.reduce((value, group) => (value << 16n) | group, 0n);
}

function formatIPv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

// ---------------------------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------------------------

function malformed(reason: string): AddressVerdict {
  return { allowed: false, cause: 'malformed_address', reason };
}

function judge(
  value: bigint,
  ranges: readonly CompiledRange[],
  policy: EgressPolicy,
  shown: string,
): AddressVerdict | undefined {
  for (const range of ranges) {
    if (!inRange(value, range)) continue;
    // Strictly `=== true`: a policy object built from untyped config fails closed.
    if (range.privateUse && policy.allowPrivateDestinations === true) return { allowed: true };
    return {
      allowed: false,
      cause: 'internal_address',
      reason: `${shown} is in ${range.cidr} (${range.name})`,
    };
  }
  return undefined;
}

/**
 * Judges one IP address literal (IPv4 dotted quad or IPv6 text, without brackets) against the
 * egress policy.
 *
 * Only global unicast addresses outside every special-purpose range are allowed. IPv4-mapped IPv6
 * addresses (`::ffff:127.0.0.1`, `::ffff:7f00:1`) are judged as the IPv4 address they map to.
 * NAT64, 6to4, Teredo and IPv4-compatible forms are refused as whole ranges, whatever IPv4
 * address they embed. An IPv6 zone id (`fe80::1%eth0`) or anything that is not an IP literal is
 * `malformed_address`.
 *
 * @param address - the IP literal, e.g. `"93.184.216.34"` or `"2606:4700:4700::1111"`.
 * @param policy - the egress policy; `allowPrivateDestinations` re-admits loopback, RFC 1918,
 *   ULA and CGNAT only.
 * @returns `{ allowed: true }`, or the refusal `cause` with a `reason` meant for operator logs
 *   (it names the range) — never show the reason to the subscriber.
 */
export function classifyAddress(address: string, policy: EgressPolicy): AddressVerdict {
  if (typeof address !== 'string') return malformed('the address is not a string');
  // Zone ids name a local interface: they only make sense for link-local targets, and they let
  // the same textual address mean different things on different hosts. Never judge them.
  if (address.includes('%')) return malformed('IPv6 zone ids are not allowed');
  const family = isIP(address);
  const t = tables();
  if (family === 4) {
    const value = parseIPv4(address);
    if (value === undefined) return malformed('not an IP address literal');
    return judge(value, t.v4, policy, address) ?? { allowed: true };
  }
  if (family === 6) {
    const value = parseIPv6(address);
    if (value === undefined) return malformed('not an IP address literal');
    if (inRange(value, t.v4Mapped)) {
      const v4 = value & 0xffffffffn;
      const shown = `${address} (IPv4-mapped ${formatIPv4(v4)})`;
      return judge(v4, t.v4, policy, shown) ?? { allowed: true };
    }
    const verdict = judge(value, t.v6, policy, address);
    if (verdict !== undefined) return verdict;
    if (!inRange(value, t.v6GlobalUnicast)) {
      return {
        allowed: false,
        cause: 'internal_address',
        reason: `${address} is outside ${IPV6_GLOBAL_UNICAST} (not global unicast)`,
      };
    }
    return { allowed: true };
  }
  return malformed('not an IP address literal');
}

// ---------------------------------------------------------------------------------------------
// Write-time URL check
// ---------------------------------------------------------------------------------------------

/**
 * Validates a webhook destination URL when a subscription is created or updated, or an inline
 * delivery is queued, and returns it parsed.
 *
 * Rules: at most {@link MAX_DESTINATION_URL_LENGTH} characters; an absolute `http:` or `https:`
 * URL with a host; no IPv6 zone id; and if the host is an IP literal — including the forms the
 * WHATWG URL parser normalises, like `http://2130706433/` or `http://0x7f.1/`, and bracketed
 * IPv6 — it must pass {@link classifyAddress}. Hostnames are deliberately not resolved here: DNS
 * can change at any time, so the decisive check is the connect-time one on the address actually
 * dialled (see `createGuardedConnector`). This check exists to give an early, clear error.
 *
 * @param raw - the URL as supplied by the caller.
 * @param policy - the egress policy.
 * @param field - the request field to name in errors (default `url`).
 * @returns the parsed URL.
 * @throws HookdError `HOOKD_ERR_INVALID_ARGUMENT` with `field` set. For a refused IP literal the
 *   message is deliberately generic and does not say which range matched.
 */
export function parseDestinationUrl(raw: string, policy: EgressPolicy, field = 'url'): URL {
  const invalid = (message: string): HookdError =>
    new HookdError('HOOKD_ERR_INVALID_ARGUMENT', message, { field });

  if (typeof raw !== 'string' || raw.trim() === '') {
    throw invalid(`${field} must be a non-empty string`);
  }
  if (raw.length > MAX_DESTINATION_URL_LENGTH) {
    throw invalid(`${field} must be at most ${MAX_DESTINATION_URL_LENGTH} characters long`);
  }
  // The WHATWG parser rejects zone ids (`[fe80::1%25eth0]`) as unparseable; catch them first so
  // the message says what is actually wrong.
  if (/\[[^\]]*%/.test(raw)) {
    throw invalid(`${field} must not contain an IPv6 zone id`);
  }

  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    if (/^\s*https?:\/*(?:[?#]|\s*$)/i.test(raw)) {
      throw invalid(`${field} must include a host`);
    }
    throw invalid(`${field} must be an absolute http:// or https:// URL`);
  }

  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(`${field} must use the http or https scheme`);
  }
  if (url.hostname === '') {
    throw invalid(`${field} must include a host`);
  }
  // Percent-encoding and IDNA can make the normalised form longer than the input.
  if (url.href.length > MAX_DESTINATION_URL_LENGTH) {
    throw invalid(`${field} must be at most ${MAX_DESTINATION_URL_LENGTH} characters long`);
  }

  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (isIP(host) !== 0 && !classifyAddress(host, policy).allowed) {
    throw invalid(`${field} points to a destination that is not allowed`);
  }
  return url;
}

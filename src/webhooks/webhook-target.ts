import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';

// Where a webhook may point (design/events.md, "Targets"): https only unless insecure URLs are
// allowed, and never a loopback, private, link-local or otherwise non-public address unless
// private targets are allowed. The address is checked where the connection is made (the
// lookup of the sender's socket), so a name that resolves to a public address when the
// webhook is registered and to a private one later (DNS rebinding) is still refused.

export interface TargetPolicy {
  allowInsecureUrls: boolean;
  allowPrivateTargets: boolean;
}

const NOT_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network" (RFC 1122 §3.2.1.3)
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // carrier-grade NAT (RFC 6598)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata endpoints live here)
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments (RFC 6890)
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking (RFC 2544)
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and the broadcast address
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique local (RFC 4193)
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
  ['64:ff9b::', 96], // NAT64 (RFC 6052): may translate to any IPv4 address
  ['2001:db8::', 32], // documentation
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv6');
}

/** Whether an IP address is one a webhook may not reach without WEBHOOK_ALLOW_PRIVATE_TARGETS. */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return NOT_PUBLIC.check(address, 'ipv4');
  if (family !== 6) return true;
  // An IPv4-mapped IPv6 address (::ffff:10.0.0.1) is the IPv4 address it maps.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return NOT_PUBLIC.check(mapped[1], 'ipv4');
  return NOT_PUBLIC.check(address, 'ipv6');
}

/** The host of a URL as an IP address, when it is one ([::1] without its brackets). */
function ipLiteral(hostname: string): string | undefined {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIP(host) ? host : undefined;
}

/** Why a URL cannot be a webhook's, or undefined when it can (what registration checks). */
export function urlProblem(raw: string, policy: TargetPolicy): string | undefined {
  const url = URL.parse(raw);
  if (!url) return 'must be an absolute URL';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowInsecureUrls)) {
    return policy.allowInsecureUrls ? 'must be an http or https URL' : 'must be an https URL';
  }
  if (url.username || url.password) return 'must not hold a user name or password';
  if (url.hash) return 'must not hold a fragment';
  const ip = ipLiteral(url.hostname);
  if (ip && !policy.allowPrivateTargets && isNonPublicAddress(ip)) return 'must not point to a loopback, private or link-local address';
  return undefined;
}

export class PrivateTargetError extends Error {
  readonly code = 'ERR_WEBHOOK_PRIVATE_TARGET';
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for the sender's sockets that resolves as usual and refuses a non-public address.
 * Node calls it with `all: true` when it may try several addresses (autoSelectFamily); every one
 * must be public.
 */
export function guardedLookup(policy: TargetPolicy) {
  return function lookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const list = addresses as LookupAddress[];
      const refused = policy.allowPrivateTargets ? undefined : list.find((a) => isNonPublicAddress(a.address));
      if (refused) return callback(new PrivateTargetError(`${hostname} resolves to ${refused.address}, a non-public address`), '');
      if (list.length === 0) return callback(Object.assign(new Error(`${hostname} did not resolve`), { code: 'ENOTFOUND' }), '');
      if (options.all) return callback(null, list);
      callback(null, list[0].address, list[0].family);
    });
  };
}

/** The check for a URL whose host is an IP address: Node connects to those without a lookup. */
export function literalTargetProblem(url: URL, policy: TargetPolicy): string | undefined {
  const ip = ipLiteral(url.hostname);
  if (ip && !policy.allowPrivateTargets && isNonPublicAddress(ip)) return `${ip} is a non-public address`;
  return undefined;
}

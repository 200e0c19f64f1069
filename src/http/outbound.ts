import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';

// Requests this server makes to URLs that tenants registered (webhook deliveries, a federation
// issuer's discovery document and JWKS): no SSRF through them. The address rules and the
// connect-time lookup are shared by both (src/webhooks/webhook-target.ts, delivery-sender.ts);
// outboundGet below is the federation's GET. https only; http only to a loopback host and only
// when insecure targets are allowed (development and tests). The address is checked where the
// socket connects (the `lookup` below), so a name that resolved to a public address once and
// to a private one now (DNS rebinding) is still refused. No redirect is followed, the answer is
// cut off past a size cap, and the whole exchange has a deadline.

export interface OutboundPolicy {
  /** http to loopback hosts, and connections to loopback, private and link-local addresses. */
  allowInsecure: boolean;
}

export interface OutboundLimits {
  timeoutMs: number;
  maxBytes: number;
}

const NOT_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network" (RFC 1122 §3.2.1.3)
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // carrier-grade NAT (RFC 6598)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, where cloud metadata endpoints answer
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments (RFC 6890)
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking (RFC 2544)
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and broadcast
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique local (RFC 4193)
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
  ['64:ff9b::', 96], // NAT64 (RFC 6052): may reach any IPv4 address
  ['2001:db8::', 32], // documentation
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv6');
}

/** Whether an address is loopback, private, link-local, unique-local or otherwise not on the public internet. */
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
export function ipLiteral(hostname: string): string | undefined {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIP(host) ? host : undefined;
}

function isLoopbackHost(hostname: string): boolean {
  if (hostname === 'localhost') return true;
  const ip = ipLiteral(hostname);
  if (!ip) return false;
  return isIP(ip) === 4 ? ip.startsWith('127.') : ip === '::1';
}

/** Why this URL may not be fetched, or undefined when it may (also what registration checks). */
export function outboundUrlProblem(raw: string, policy: OutboundPolicy): string | undefined {
  const url = URL.parse(raw);
  if (!url) return 'must be an absolute URL';
  if (url.protocol === 'http:') {
    if (!policy.allowInsecure) return 'must be an https URL';
    if (!isLoopbackHost(url.hostname)) return 'must be an https URL (http only on a loopback host)';
  } else if (url.protocol !== 'https:') {
    return 'must be an https URL';
  }
  if (url.username || url.password) return 'must not hold a user name or password';
  if (url.hash) return 'must not hold a fragment';
  // Node connects to an IP literal without a lookup: checked here instead.
  const ip = ipLiteral(url.hostname);
  if (ip && !policy.allowInsecure && isNonPublicAddress(ip)) return 'must not point to a loopback, private or link-local address';
  return undefined;
}

export class OutboundError extends Error {
  /** A short, stable word for logs and audit details: refused_url, private_address, timeout, too_large, redirect, status, network. */
  readonly reason: string;

  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** What a socket's lookup fails with for a non-public address (the `error` of the request, its `code` this). */
export class NonPublicAddressError extends OutboundError {
  readonly code = 'ERR_OUTBOUND_NON_PUBLIC_ADDRESS';

  constructor(message: string) {
    super('private_address', message);
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A socket `lookup` that resolves as usual and, unless `allowPrivate`, refuses a non-public
 * address. Node calls it with `all: true` when it may try several addresses (autoSelectFamily):
 * every one must be public. An IP literal is connected to without a lookup: check it apart.
 */
export function guardedLookup(allowPrivate: boolean) {
  return function lookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const list = addresses as LookupAddress[];
      const refused = allowPrivate ? undefined : list.find((a) => isNonPublicAddress(a.address));
      if (refused) return callback(new NonPublicAddressError(`${hostname} resolves to ${refused.address}, a non-public address`), '');
      if (!list.length) return callback(Object.assign(new Error(`${hostname} did not resolve`), { code: 'ENOTFOUND' }), '');
      if (options.all) return callback(null, list);
      callback(null, list[0].address, list[0].family);
    });
  };
}

export interface OutboundAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One GET under the rules above; anything but a 2xx is an OutboundError (a redirect is never followed). */
export function outboundGet(url: string, policy: OutboundPolicy, limits: OutboundLimits, accept = 'application/json'): Promise<OutboundAnswer> {
  const problem = outboundUrlProblem(url, policy);
  if (problem) return Promise.reject(new OutboundError('refused_url', `${url} ${problem}`));
  const target = new URL(url);
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<OutboundAnswer>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, answer?: OutboundAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(answer!);
    };
    const req = request(
      target,
      { method: 'GET', headers: { accept, 'user-agent': 'agent-idp' }, lookup: guardedLookup(policy.allowInsecure) as never, agent: false },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400) return finish(new OutboundError('redirect', `${url} answered ${status}; redirects are not followed`));
        if (status < 200 || status >= 300) return finish(new OutboundError('status', `${url} answered ${status}`));
        const declared = Number(res.headers['content-length']);
        if (declared > limits.maxBytes) return finish(new OutboundError('too_large', `${url} answered more than ${limits.maxBytes} bytes`));
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limits.maxBytes) return finish(new OutboundError('too_large', `${url} answered more than ${limits.maxBytes} bytes`));
          chunks.push(chunk);
        });
        res.on('end', () => finish(undefined, { status, headers: res.headers, body: Buffer.concat(chunks, size) }));
        res.on('error', (err) => finish(new OutboundError('network', `${url}: ${err.message}`)));
      },
    );
    const deadline = setTimeout(() => finish(new OutboundError('timeout', `${url} did not answer within ${limits.timeoutMs} ms`)), limits.timeoutMs);
    req.on('error', (err) => finish(err instanceof OutboundError ? err : new OutboundError('network', `${url}: ${err.message}`)));
    req.end();
  });
}

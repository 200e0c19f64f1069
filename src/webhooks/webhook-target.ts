import { ipLiteral, isNonPublicAddress } from '../http/outbound.ts';

// Where a webhook may point (design/events.md, "Targets"): https only unless insecure URLs are
// allowed, and never a loopback, private, link-local or otherwise non-public address unless
// private targets are allowed. The address is checked where the connection is made (the
// lookup of the sender's socket), so a name that resolves to a public address when the
// webhook is registered and to a private one later (DNS rebinding) is still refused. The
// address rules and that lookup are src/http/outbound.ts, shared with the federation's fetches.

export interface TargetPolicy {
  allowInsecureUrls: boolean;
  allowPrivateTargets: boolean;
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

/** The check for a URL whose host is an IP address: Node connects to those without a lookup. */
export function literalTargetProblem(url: URL, policy: TargetPolicy): string | undefined {
  const ip = ipLiteral(url.hostname);
  if (ip && !policy.allowPrivateTargets && isNonPublicAddress(ip)) return `${ip} is a non-public address`;
  return undefined;
}

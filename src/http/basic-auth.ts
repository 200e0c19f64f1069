// client_secret_basic (RFC 6749 §2.3.1): the client id and secret are form-urlencoded, joined
// by a colon, and base64-encoded in an `Authorization: Basic` header.

export interface BasicCredentials {
  clientId: string;
  clientSecret: string;
}

function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

/** The credentials of a Basic header; null for any other scheme or a malformed value. */
export function parseBasicAuth(header: string): BasicCredentials | null {
  const [scheme, encoded, extra] = header.split(' ');
  if (scheme?.toLowerCase() !== 'basic' || !encoded || extra !== undefined) return null;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return null;
  try {
    return { clientId: formDecode(decoded.slice(0, colon)), clientSecret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    return null;
  }
}

/** The Basic header a client sends. */
export function basicAuthHeader(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
}

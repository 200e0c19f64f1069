import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { OutboundError, outboundGet, outboundUrlProblem, type OutboundPolicy } from '../../http/outbound.ts';
import { jwkTypeFor, keyFitsAlg } from './jws-verify.ts';

// The signing keys of the external issuers that agents federate with (RFC 7523 §2.1 at /token):
// found through the issuer's discovery document (OpenID Connect Discovery 1.0 §4, else RFC 8414
// §3), whose `jwks_uri` is fetched under the outbound rules (src/http/outbound.ts). Kept as long
// as the JWKS answer's Cache-Control allows, within bounds; a kid not in the set makes one
// refetch, at most once a minute per issuer, so that a rotation at the issuer is seen at once
// and a stream of made-up kids cannot make this server hammer the issuer. Each key is made into a
// KeyObject once, when its JWKS arrives, so that an assertion costs a node:crypto verify and no
// key import (jws-verify.ts).

export interface IssuerKeysOptions {
  fetchTimeoutMs: number;
  /** Now, in ms (tests drive it). */
  clock?: () => number;
  maxIssuers?: number;
}

const DISCOVERY_MAX_BYTES = 64 * 1024;
const JWKS_MAX_BYTES = 256 * 1024;
/** Keys are kept at least this long (a no-store JWKS would otherwise be fetched per request), and at most an hour. */
const MIN_KEEP_MS = 60_000;
const MAX_KEEP_MS = 3_600_000;
/** Without Cache-Control. */
const DEFAULT_KEEP_MS = 300_000;
/** At most one refetch per issuer in this time for an unknown kid. */
export const REFETCH_INTERVAL_MS = 60_000;
/** A failed fetch is remembered this long: an issuer that is down or refused is not asked again per request. */
export const FAILURE_MEMORY_MS = 10_000;

export class IssuerKeysError extends Error {
  /** For token.denied: issuer_<outbound reason> (issuer_timeout, issuer_too_large, issuer_redirect, issuer_private_address, ...) or issuer_bad_metadata. */
  readonly reason: string;

  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** A public key of an issuer's JWKS, with the members that decide which JWS it may verify (RFC 7517 §4). */
export interface IssuerKey {
  kty: string;
  crv: unknown;
  kid: unknown;
  alg: unknown;
  use: unknown;
  keyOps: unknown;
  key: KeyObject;
}

/** The keys of one issuer, as last fetched. */
export class IssuerKeySet {
  readonly #keys: IssuerKey[];

  constructor(keys: IssuerKey[]) {
    this.#keys = keys;
  }

  /**
   * The keys that may verify a JWS whose header names `alg` and `kid`, with jose's rules of
   * selection (createLocalJWKSet, src/jwks/local.ts): the key type and curve of the alg, the kid
   * when the header names one, the JWK's own alg when it has one, `use` sig, `key_ops` with verify.
   */
  candidates(alg: string, kid: string | undefined): KeyObject[] {
    const type = jwkTypeFor(alg);
    if (!type) return [];
    const out: KeyObject[] = [];
    for (const k of this.#keys) {
      if (k.kty !== type.kty || (type.crv !== undefined && k.crv !== type.crv)) continue;
      if (kid !== undefined && k.kid !== kid) continue;
      if (k.alg !== undefined && k.alg !== alg) continue;
      if (k.use !== undefined && k.use !== 'sig') continue;
      if (k.keyOps !== undefined && !(Array.isArray(k.keyOps) && k.keyOps.includes('verify') && new Set(k.keyOps).size === k.keyOps.length)) continue;
      if (keyFitsAlg(alg, k.key)) out.push(k.key);
    }
    return out;
  }
}

/** The JWKS members that can verify anything: public keys (never a private or symmetric member), made into KeyObjects. */
export function issuerKeysOf(members: unknown[]): IssuerKey[] {
  const out: IssuerKey[] = [];
  for (const m of members) {
    if (!m || typeof m !== 'object' || Array.isArray(m)) continue;
    const jwk = m as Record<string, unknown>;
    if (typeof jwk.kty !== 'string' || jwk.kty === 'oct' || jwk.d !== undefined) continue;
    if (jwk.ext !== undefined && typeof jwk.ext !== 'boolean') continue;
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch {
      // A member that is not a key node can read verifies nothing; the others still do.
      continue;
    }
    out.push({ kty: jwk.kty, crv: jwk.crv, kid: jwk.kid, alg: jwk.alg, use: jwk.use, keyOps: jwk.key_ops, key });
  }
  return out;
}

interface Entry {
  keys: IssuerKeySet;
  kids: Set<unknown>;
  expiresAt: number;
  fetchedAt: number;
}

function keepMs(cacheControl: string | undefined): number {
  if (!cacheControl) return DEFAULT_KEEP_MS;
  if (/(^|,)\s*(no-store|no-cache)\b/i.test(cacheControl)) return MIN_KEEP_MS;
  const maxAge = /(^|,)\s*max-age=(\d+)/i.exec(cacheControl);
  if (!maxAge) return DEFAULT_KEEP_MS;
  return Math.min(MAX_KEEP_MS, Math.max(MIN_KEEP_MS, Number(maxAge[2]) * 1000));
}

function json(body: Buffer, what: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // Answered below.
  }
  throw new IssuerKeysError('issuer_bad_metadata', `${what} is not a JSON object`);
}

/** The discovery URLs of an issuer, in the order tried: OpenID Connect's (path appended), RFC 8414's (inserted before the path). */
export function discoveryUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, '');
  return [`${url.origin}${path}/.well-known/openid-configuration`, `${url.origin}/.well-known/oauth-authorization-server${path}`];
}

export class IssuerKeys {
  readonly #policy: OutboundPolicy;
  readonly #timeoutMs: number;
  readonly #clock: () => number;
  readonly #maxIssuers: number;
  /** Oldest first (insertion order), for the bound. */
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, Promise<Entry>>();
  readonly #failures = new Map<string, { error: IssuerKeysError; until: number }>();

  constructor(policy: OutboundPolicy, options: IssuerKeysOptions) {
    this.#policy = policy;
    this.#timeoutMs = options.fetchTimeoutMs;
    this.#clock = options.clock ?? Date.now;
    this.#maxIssuers = options.maxIssuers ?? 1000;
  }

  /**
   * The keys for a JWS from `issuer` whose header names `kid`: a cached set that knows the kid,
   * else a fresh one where allowed. Not async when cached (the hot path: no promise of its own).
   */
  keysFor(issuer: string, kid: string | undefined): IssuerKeySet | Promise<IssuerKeySet> {
    const now = this.#clock();
    const cached = this.#entries.get(issuer);
    if (cached && cached.expiresAt > now && (cached.kids.has(kid) || kid === undefined || now - cached.fetchedAt < REFETCH_INTERVAL_MS)) {
      return cached.keys;
    }
    const failed = this.#failures.get(issuer);
    if (failed && failed.until > now) return Promise.reject(failed.error);
    return this.#refresh(issuer).then((entry) => entry.keys);
  }

  #refresh(issuer: string): Promise<Entry> {
    // Concurrent requests of one issuer share one fetch.
    const pending = this.#inFlight.get(issuer);
    if (pending) return pending;
    const fetching = this.#fetch(issuer)
      .then(
        (entry) => {
          this.#failures.delete(issuer);
          return entry;
        },
        (err: unknown) => {
          const error = asIssuerError(err);
          this.#failures.delete(issuer);
          this.#failures.set(issuer, { error, until: this.#clock() + FAILURE_MEMORY_MS });
          while (this.#failures.size > this.#maxIssuers) this.#failures.delete(this.#failures.keys().next().value!);
          throw error;
        },
      )
      .finally(() => this.#inFlight.delete(issuer));
    this.#inFlight.set(issuer, fetching);
    return fetching;
  }

  async #fetch(issuer: string): Promise<Entry> {
    const limits = { timeoutMs: this.#timeoutMs, maxBytes: DISCOVERY_MAX_BYTES };
    let metadata: Record<string, unknown> | undefined;
    let firstError: unknown;
    for (const url of discoveryUrls(issuer)) {
      try {
        metadata = json((await outboundGet(url, this.#policy, limits)).body, 'the discovery document');
        break;
      } catch (err) {
        firstError ??= err;
        // Only a missing document sends us to the next one; a slow, oversized or refused one would be again.
        if (!(err instanceof OutboundError && err.reason === 'status')) break;
      }
    }
    if (!metadata) throw asIssuerError(firstError);
    // OpenID Connect Discovery §4.3, RFC 8414 §3.3: the document must be the issuer's own.
    if (metadata.issuer !== issuer) throw new IssuerKeysError('issuer_bad_metadata', 'the discovery document names another issuer');
    const jwksUri = metadata.jwks_uri;
    if (typeof jwksUri !== 'string' || outboundUrlProblem(jwksUri, this.#policy)) {
      throw new IssuerKeysError('issuer_bad_metadata', 'the discovery document has no usable jwks_uri');
    }
    let answer;
    try {
      answer = await outboundGet(jwksUri, this.#policy, { timeoutMs: this.#timeoutMs, maxBytes: JWKS_MAX_BYTES }, 'application/jwk-set+json, application/json');
    } catch (err) {
      throw asIssuerError(err);
    }
    const jwks = json(answer.body, 'the JWKS');
    if (!Array.isArray(jwks.keys)) throw new IssuerKeysError('issuer_bad_metadata', 'the JWKS has no keys');
    const keys = issuerKeysOf(jwks.keys);
    const header = answer.headers['cache-control'];
    const now = this.#clock();
    const entry: Entry = {
      keys: new IssuerKeySet(keys),
      kids: new Set(keys.map((k) => k.kid)),
      expiresAt: now + keepMs(Array.isArray(header) ? header.join(',') : header),
      fetchedAt: now,
    };
    this.#entries.delete(issuer);
    this.#entries.set(issuer, entry);
    while (this.#entries.size > this.#maxIssuers) this.#entries.delete(this.#entries.keys().next().value!);
    return entry;
  }
}

function asIssuerError(err: unknown): IssuerKeysError {
  if (err instanceof IssuerKeysError) return err;
  if (err instanceof OutboundError) return new IssuerKeysError(`issuer_${err.reason}`, err.message);
  return new IssuerKeysError('issuer_network', err instanceof Error ? err.message : String(err));
}

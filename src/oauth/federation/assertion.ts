import { decodeJwt } from 'jose';
import type { FederatedIdentity } from '../../agents/agent.entity.ts';
import type { ReplaysRepository } from '../replays.repository.ts';
import { type IssuerKeys, IssuerKeysError } from './issuer-keys.ts';
import { JWS_VERIFY_ALGS, parseCompactJws, verifyJwsSignature } from './jws-verify.ts';

// The checks of RFC 7523 §3 on an external JWT presented as an authorization grant (§2.1), with
// the bounds of design/delegation-and-federation.md: asymmetric signatures only, iss and sub of
// the mapped identity, aud containing the expected audience, exp in the future and at most an
// hour away, nbf and iat not in the future, and a jti, when there is one, used once across
// every instance. Each refusal has a reason of its own for token.denied.

/** RFC 7518 §3.1 and RFC 8037: the asymmetric JWS algorithms; never HS* (a shared secret) nor `none`. */
export const ASYMMETRIC_ALGS: readonly string[] = JWS_VERIFY_ALGS;
export const MAX_ASSERTION_LIFETIME_SECONDS = 3600;
/** Clocks of the issuer and here may differ a little. */
export const FEDERATION_CLOCK_TOLERANCE_SECONDS = 30;

export class AssertionRefused extends Error {
  readonly reason: string;

  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** iss and sub of an assertion, unverified: to find the identity it claims (then verified). */
export function claimedIdentity(assertion: string): { issuer: string; subject: string } | undefined {
  try {
    const { iss, sub } = decodeJwt(assertion);
    return typeof iss === 'string' && typeof sub === 'string' ? { issuer: iss, subject: sub } : undefined;
  } catch {
    return undefined;
  }
}

export class AssertionVerifier {
  readonly #keys: IssuerKeys;
  readonly #replays: Pick<ReplaysRepository, 'claim'>;
  readonly #issuerUrl: string;

  constructor(keys: IssuerKeys, replays: Pick<ReplaysRepository, 'claim'>, issuerUrl: string) {
    this.#keys = keys;
    this.#replays = replays;
    this.#issuerUrl = issuerUrl;
  }

  /** Resolves when `assertion` is a good grant for `identity`; an AssertionRefused otherwise. */
  async verify(assertion: string, identity: FederatedIdentity): Promise<void> {
    const jws = parseCompactJws(assertion);
    if (!jws) throw new AssertionRefused('malformed', 'the assertion is not a signed JWT');
    const { alg, kid, crit } = jws.header;
    if (typeof alg !== 'string' || !ASYMMETRIC_ALGS.includes(alg)) {
      throw new AssertionRefused('bad_algorithm', 'the assertion must be signed with an asymmetric algorithm');
    }
    // RFC 7515 §4.1.11: an extension the recipient must understand; none is understood here (jose refuses them too).
    if (crit !== undefined) throw new AssertionRefused('malformed', 'the assertion header has crit extensions');
    if (kid !== undefined && typeof kid !== 'string') throw new AssertionRefused('malformed', 'the assertion kid is not a string');
    let keys;
    try {
      keys = await this.#keys.keysFor(identity.issuer, kid);
    } catch (err) {
      if (err instanceof IssuerKeysError) throw new AssertionRefused(err.reason, "the issuer's keys could not be fetched");
      throw err;
    }
    const candidates = keys.candidates(alg, kid);
    // One key, as jose's createLocalJWKSet wants: two that match are a JWKS that cannot say which one signed.
    if (candidates.length !== 1) throw new AssertionRefused('unknown_key', "no key of the issuer's JWKS matches the assertion");
    if (!verifyJwsSignature(alg, candidates[0], jws.signingInput, jws.signature)) {
      throw new AssertionRefused('bad_signature', 'the assertion signature does not verify');
    }
    let claims: unknown;
    try {
      claims = JSON.parse(Buffer.from(jws.encodedPayload, 'base64url').toString('utf8'));
    } catch {
      throw new AssertionRefused('malformed', 'the assertion payload is not JSON');
    }
    if (!claims || typeof claims !== 'object' || Array.isArray(claims)) throw new AssertionRefused('malformed', 'the assertion payload is not a JSON object');
    await this.#checkClaims(claims as Record<string, unknown>, identity);
  }

  async #checkClaims(claims: Record<string, unknown>, identity: FederatedIdentity): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    const tolerance = FEDERATION_CLOCK_TOLERANCE_SECONDS;
    if (claims.iss !== identity.issuer) throw new AssertionRefused('issuer', 'the assertion iss is not the issuer of the identity');
    if (claims.sub !== identity.subject) throw new AssertionRefused('subject', 'the assertion sub is not the subject of the identity');
    // RFC 7523 §3 item 3: the audience must identify this authorization server.
    const expected = identity.audience ?? this.#issuerUrl;
    const aud = claims.aud;
    if (!(aud === expected || (Array.isArray(aud) && aud.includes(expected))))
      throw new AssertionRefused('audience', `the assertion aud must contain ${expected}`);
    const { exp, nbf, iat, jti } = claims;
    if (typeof exp !== 'number') throw new AssertionRefused('expired', 'the assertion has no exp');
    if (exp <= now - tolerance) throw new AssertionRefused('expired', 'the assertion has expired');
    if (exp > now + MAX_ASSERTION_LIFETIME_SECONDS + tolerance) throw new AssertionRefused('too_long', 'the assertion expires more than an hour from now');
    if (nbf !== undefined && (typeof nbf !== 'number' || nbf > now + tolerance))
      throw new AssertionRefused('not_yet_valid', 'the assertion is not valid yet (nbf)');
    if (iat !== undefined && (typeof iat !== 'number' || iat > now + tolerance))
      throw new AssertionRefused('issued_in_future', 'the assertion iat is in the future');
    if (jti !== undefined) {
      if (typeof jti !== 'string' || !jti) throw new AssertionRefused('malformed', 'the assertion jti is not a string');
      // RFC 7523 §3 item 7; kept until the assertion could no longer be accepted anyway.
      const keep = Math.max(60, exp - now + tolerance);
      if (!(await this.#replays.claim(`jwt-bearer:${identity.issuer} ${jti}`, keep)))
        throw new AssertionRefused('replayed', 'the assertion jti was used before');
    }
  }
}

import { createHash } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, importJWK, jwtVerify, type JWTHeaderParameters, type JWTPayload } from 'jose';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import type { CredentialKey, PublicJwk } from '../../credentials/credential.entity.ts';
import { TOKEN_PATH } from '../paths.ts';
import { clientAuthNotes } from './note.ts';

// private_key_jwt (RFC 7523 §2.2, §3; design/keys-and-dpop.md): an agent authenticates with a
// JWT it signed with the private half of one of its key credentials. At /token oidc-provider
// verifies the assertion against the keys the adapter hands it (keysForAssertion) and calls
// assertClaims for the rules it leaves to us; at our own endpoints (introspection, revocation)
// verifyClientAssertion applies the same rules. In both, the assertion's jti is claimed in
// PostgreSQL (ReplaysRepository), so that it is accepted once across all instances.

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** An assertion may not be valid longer than this from now: its jti must be remembered as long (REPLAY_WINDOW_SECONDS). */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;

/** As oidc-provider's default clockTolerance. */
export const CLOCK_TOLERANCE_SECONDS = 15;

/** Why a key assertion failed, for token.denied (the answer is always invalid_client). */
export type AssertionFailure = 'bad_assertion' | 'assertion_replayed' | 'unknown_key' | 'credential_revoked' | 'credential_expired' | 'no_key_credential';

export interface AssertionKeys {
  /** The public keys an assertion may be verified with now (the one its kid names, else every usable key). */
  jwks: PublicJwk[];
  /** kid → the credential that holds that key. */
  credentialOf: Map<string, string>;
  /** Set when no key can verify it: why. */
  failure?: AssertionFailure;
}

/** The kid in a JWT's header, without trusting anything else of it. */
export function headerKid(jwt: string): string | undefined {
  try {
    const { kid } = decodeProtectedHeader(jwt);
    return typeof kid === 'string' ? kid : undefined;
  } catch {
    return undefined;
  }
}

/** The keys of an agent's key credentials that may verify an assertion with header `kid` now. */
export function keysForAssertion(credentials: CredentialKey[], kid: string | undefined, now = Date.now()): AssertionKeys {
  const jwks: PublicJwk[] = [];
  const credentialOf = new Map<string, string>();
  let failure: AssertionFailure | undefined;
  for (const c of credentials) {
    const usable = c.status === 'active' && (c.expiresAt === null || c.expiresAt.getTime() > now);
    const candidates: [string | null, PublicJwk | null][] = [[c.kid, c.publicJwk]];
    if (c.previousExpiresAt && c.previousExpiresAt.getTime() > now) candidates.push([c.previousKid, c.previousPublicJwk]);
    for (const [keyId, jwk] of candidates) {
      if (!keyId || !jwk || (kid !== undefined && keyId !== kid)) continue;
      if (usable) {
        jwks.push(jwk);
        credentialOf.set(keyId, c.id);
      } else {
        failure ??= c.status === 'revoked' ? 'credential_revoked' : 'credential_expired';
      }
    }
  }
  if (jwks.length === 0) failure ??= credentials.length === 0 ? 'no_key_credential' : kid !== undefined ? 'unknown_key' : 'credential_revoked';
  return { jwks, credentialOf, ...(jwks.length === 0 ? { failure } : {}) };
}

/** What oidc-provider's ReplayDetection stores for an assertion (models/replay_detection.js): our claim id. */
export function replayIdOf(iss: string, jti: string): string {
  return createHash('sha256').update(`${iss}${jti}`).digest('base64url');
}

/** The audiences an assertion may name (RFC 7523 §3, item 3): the issuer, or the token endpoint. */
export function assertionAudiences(issuer: string): Set<string> {
  return new Set([issuer, issuer + TOKEN_PATH]);
}

function lifetimeProblem(payload: JWTPayload, nowSeconds: number): string | undefined {
  if (typeof payload.exp !== 'number') return 'the client assertion must have an exp';
  if (payload.exp > nowSeconds + MAX_ASSERTION_LIFETIME_SECONDS + CLOCK_TOLERANCE_SECONDS) {
    return `the client assertion may be valid for at most ${MAX_ASSERTION_LIFETIME_SECONDS} seconds from now`;
  }
  if (typeof payload.iat === 'number' && payload.iat > nowSeconds + CLOCK_TOLERANCE_SECONDS) return 'the client assertion was issued in the future';
  return undefined;
}

/**
 * oidc-provider's assertJwtClientAuthClaimsAndHeader, after it verified the signature, iss,
 * aud (the issuer or an endpoint URL, which follow PUBLIC_URL: hooks/public-origin.ts), exp and
 * that a jti is there: a bounded lifetime, sub = client id, and for the audit event which
 * credential's key signed it.
 */
export async function assertClaims(ctx: KoaContextWithOIDC, claims: JWTPayload, header: JWTHeaderParameters, client: { clientId: string }): Promise<void> {
  const note = clientAuthNotes.getStore();
  const problem = lifetimeProblem(claims, Math.floor(Date.now() / 1000)) ?? (claims.sub !== client.clientId ? 'sub must be the client_id' : undefined);
  if (problem) throw new errors.InvalidClientAuth(problem);
  if (note) {
    note.replayId = replayIdOf(String(claims.iss), String(claims.jti));
    const keys = note.assertionKeys;
    if (keys) note.credentialId = await signingCredential(ctx.oidc.params!.client_assertion as string, header, keys);
  }
}

/** Which credential's key verified an assertion: the one its kid names, else the one key that verifies it. */
async function signingCredential(assertion: string, header: JWTHeaderParameters, keys: AssertionKeys): Promise<string | undefined> {
  if (header.kid) return keys.credentialOf.get(header.kid);
  for (const jwk of keys.jwks) {
    try {
      await jwtVerify(assertion, await importJWK(jwk, jwk.alg), { algorithms: [jwk.alg] });
      return keys.credentialOf.get(jwk.kid);
    } catch {
      // Not this key.
    }
  }
  return undefined;
}

export type AssertionCheck = { ok: true; credentialId: string } | { ok: false; reason: AssertionFailure; description: string };

/**
 * At our own endpoints: the same rules as oidc-provider's at /token (lib/shared/jwt_client_auth.js)
 * and assertClaims, and the jti claimed across instances.
 */
export async function verifyClientAssertion(
  assertion: string,
  clientId: string,
  credentials: CredentialKey[],
  { issuer, endpointUrl, claimReplay }: { issuer: string; endpointUrl: string; claimReplay: (id: string) => Promise<boolean> },
): Promise<AssertionCheck> {
  const keys = keysForAssertion(credentials, headerKid(assertion));
  if (keys.failure) return { ok: false, reason: keys.failure, description: 'no usable key of this client matches the client assertion' };
  const audiences = [...assertionAudiences(issuer), endpointUrl];
  let verified: { payload: JWTPayload; kid: string } | undefined;
  for (const jwk of keys.jwks) {
    try {
      const { payload } = await jwtVerify(assertion, await importJWK(jwk, jwk.alg), {
        algorithms: [jwk.alg],
        issuer: clientId,
        subject: clientId,
        audience: audiences,
        requiredClaims: ['exp', 'jti'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      });
      verified = { payload, kid: jwk.kid };
      break;
    } catch (err) {
      // A claim that fails fails with every key.
      if (err instanceof joseErrors.JWTClaimValidationFailed || err instanceof joseErrors.JWTExpired) {
        return { ok: false, reason: 'bad_assertion', description: `the client assertion is invalid: ${err.message}` };
      }
    }
  }
  if (!verified) return { ok: false, reason: 'bad_assertion', description: 'the client assertion signature does not verify' };
  const problem = lifetimeProblem(verified.payload, Math.floor(Date.now() / 1000));
  if (problem) return { ok: false, reason: 'bad_assertion', description: problem };
  if (!(await claimReplay(replayIdOf(clientId, String(verified.payload.jti))))) {
    return { ok: false, reason: 'assertion_replayed', description: 'client assertion tokens must only be used once' };
  }
  return { ok: true, credentialId: keys.credentialOf.get(verified.kid)! };
}

import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from 'jose';
import { SIGNING_ALGS } from '../../config/index.ts';
import type { DpopProofCheck } from '../http/bearer.ts';
import type { ReplaysRepository } from './replays.repository.ts';

// agent-idp as a DPoP resource server (RFC 9449 §7, §4.3), for /api/v1 and /mcp: a DPoP-bound
// token counts only with a proof, made for this request, by the key the token is bound to.

/** How far a proof's iat may be from now, either way (as oidc-provider accepts at /token). */
export const PROOF_IAT_WINDOW_SECONDS = 300;

export const DPOP_ALGS = [...SIGNING_ALGS];

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

/**
 * Checks the DPoP proof of a request to `publicUrl + path`: signed by its embedded public key
 * (typ dpop+jwt, an allowed algorithm), htm and htu of this request, ath of this token, iat
 * fresh, that key's thumbprint the token's cnf.jkt, and its jti never seen before on any
 * instance. Answers why it fails, or undefined.
 */
export function dpopProofChecker(publicUrl: string, replays: Pick<ReplaysRepository, 'claim'>): DpopProofCheck {
  return async function checkDpopProof(proof, request, token, jkt) {
    if (!proof) return 'a DPoP proof is required with a DPoP-bound token (the DPoP header)';
    let payload;
    let jwk;
    try {
      const verified = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: DPOP_ALGS });
      payload = verified.payload;
      jwk = verified.protectedHeader.jwk!;
    } catch {
      return 'the DPoP proof is not a valid dpop+jwt signed by the key in its header';
    }
    if (payload.htm !== request.method) return 'the DPoP proof htm does not match the request method';
    const htu = typeof payload.htu === 'string' ? URL.parse(payload.htu) : null;
    if (htu) {
      htu.search = '';
      htu.hash = '';
    }
    if (!htu || htu.href !== new URL(publicUrl + request.path).href) return 'the DPoP proof htu does not match the request URL';
    if (payload.ath !== sha256(token)) return "the DPoP proof ath is not this token's hash";
    if (typeof payload.iat !== 'number' || Math.abs(Date.now() / 1000 - payload.iat) > PROOF_IAT_WINDOW_SECONDS) {
      return 'the DPoP proof iat is not recent enough';
    }
    if (typeof payload.jti !== 'string' || !payload.jti) return 'the DPoP proof must have a jti';
    if ((await calculateJwkThumbprint(jwk, 'sha256')) !== jkt) return 'the DPoP proof is not signed by the key this token is bound to';
    if (!(await replays.claim(sha256(`dpop:${jkt}:${payload.jti}`)))) return 'the DPoP proof was already used; make a new proof for every request';
    return undefined;
  };
}

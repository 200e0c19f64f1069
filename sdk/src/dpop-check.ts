import { EmbeddedJWK, calculateJwkThumbprint, decodeProtectedHeader, errors, jwtVerify, type JWK } from 'jose';
import { accessTokenHash, htu } from './dpop.ts';
import { TokenError } from './errors.ts';

// The resource server's side of RFC 9449: the checks of §4.3 and §7.1 on the proof that comes
// with a DPoP-bound token.

export interface DpopCheckOptions {
  /** How far (s) a proof's `iat` may be from now, either way (default 60), on top of the verifier's clock tolerance. */
  maxAgeSeconds?: number;
  /** How many proof jtis the replay cache holds at most (default 10 000). */
  replayCacheSize?: number;
}

/** What the request a token came with says: its method, its full URL, and its `DPoP` header(s). */
export interface ProofContext {
  method: string;
  url: string;
  /** The `DPoP` header's value(s); node:http joins repeated ones with `, `. */
  proof: string | string[] | undefined;
}

// RFC 9449 §4.3 step 5: asymmetric algorithms only; these are what jose and WebCrypto sign with.
const PROOF_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];

const refuse = (message: string, cause?: unknown) => new TokenError('invalid_dpop_proof', message, { cause, dpop: true });

/**
 * The jtis of the proofs seen, each kept until its proof could no longer pass the `iat` check:
 * per process (replicas behind a load balancer do not share it; each refuses a replay it has
 * seen), and bounded: once full, the expired entries go, then the oldest.
 */
export class ReplayCache {
  readonly #seen = new Map<string, number>();
  readonly #size: number;

  constructor(size: number) {
    this.#size = size;
  }

  /** False when the jti was seen and has not expired; else remembers it until `until` (ms). */
  add(jti: string, until: number, now: number): boolean {
    const seen = this.#seen.get(jti);
    if (seen !== undefined && seen > now) return false;
    if (this.#seen.size >= this.#size) this.#prune(now);
    this.#seen.set(jti, until);
    return true;
  }

  #prune(now: number): void {
    for (const [jti, until] of this.#seen) if (until <= now) this.#seen.delete(jti);
    for (const jti of this.#seen.keys()) {
      if (this.#seen.size < this.#size) break;
      this.#seen.delete(jti);
    }
  }
}

export function dpopChecker(options: DpopCheckOptions & { clockToleranceSeconds: number; now: () => number }) {
  const window = (options.maxAgeSeconds ?? 60) + options.clockToleranceSeconds;
  const replays = new ReplayCache(options.replayCacheSize ?? 10_000);

  /** Checks the proof of a token bound to `jkt`; throws TokenError. */
  return async function checkProof(token: string, jkt: string, context: ProofContext): Promise<void> {
    const values = (Array.isArray(context.proof) ? context.proof : [context.proof ?? '']).flatMap((v) => v.split(',')).map((v) => v.trim());
    // §4.3 steps 1-2: exactly one proof, a JWT.
    if (values.length !== 1 || !values[0]) throw refuse(values.length > 1 ? 'more than one DPoP header' : 'no DPoP proof');
    const proof = values[0];

    let payload: Record<string, unknown>;
    let jwk: JWK;
    try {
      const header = decodeProtectedHeader(proof);
      // §4.3 steps 4-7: typ, an asymmetric alg, a public jwk (EmbeddedJWK refuses a private one), the signature.
      ({ payload } = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: PROOF_ALGORITHMS,
        requiredClaims: ['iat', 'jti', 'htm', 'htu'],
        // iat is checked below, both ways: jose's maxTokenAge would allow any iat in the future.
        currentDate: new Date(options.now()),
      }));
      jwk = header.jwk as JWK;
    } catch (err) {
      if (err instanceof errors.JOSEError || err instanceof TypeError) throw refuse(`the DPoP proof is not valid: ${(err as Error).message}`, err);
      throw err;
    }

    // §4.3 steps 8-9: the method and the URL without query and fragment.
    if (payload.htm !== context.method.toUpperCase()) throw refuse(`the DPoP proof is for ${String(payload.htm)}, not ${context.method.toUpperCase()}`);
    let proofUrl: string;
    try {
      proofUrl = htu(String(payload.htu));
    } catch {
      throw refuse('the DPoP proof htu is not a URL');
    }
    if (proofUrl !== htu(context.url)) throw refuse(`the DPoP proof is for ${proofUrl}, not ${htu(context.url)}`);

    // §4.3 step 11: iat within the window, on either side of now.
    const nowSeconds = options.now() / 1000;
    const iat = payload.iat as number;
    if (typeof iat !== 'number' || Math.abs(nowSeconds - iat) > window) throw refuse(`the DPoP proof's iat is more than ${window} s from now`);

    // §4.3 step 12, §7.1: the proof goes with this token (ath) and its key is the token's (cnf.jkt).
    if (payload.ath !== (await accessTokenHash(token))) throw refuse("the DPoP proof's ath is not the hash of this access token");
    if ((await calculateJwkThumbprint(jwk)) !== jkt) {
      throw new TokenError('invalid_token', "the DPoP proof is signed by another key than the token's cnf.jkt", { dpop: true });
    }

    // §11.1: a proof is used once. Recorded last, so that proofs failing a check above cannot fill the cache.
    if (typeof payload.jti !== 'string' || !replays.add(`${jkt} ${payload.jti}`, (iat + window) * 1000, options.now()))
      throw refuse('the DPoP proof was used before (its jti is replayed)');
  };
}

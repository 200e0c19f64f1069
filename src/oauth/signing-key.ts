import { constants, createPrivateKey, createPublicKey, sign, type KeyObject, type SignKeyObjectInput } from 'node:crypto';
import type { JWK } from 'jose';
import { ExternalSigningKey } from 'oidc-provider';
import type { SigningAlg } from '../../config/index.ts';

// Our signing keys as oidc-provider's ExternalSigningKey (features.externalSigningSupport, made
// for keys held by a KMS or an HSM): oidc-provider still builds every JWT (header, claims,
// lifetime) and asks the key only for the signature of its bytes. Given a private JWK, jose would
// sign through WebCrypto: an asynchronous job per token, and its key import, at about 25 µs
// (ES256) to 40 µs (RS256) more than node:crypto's synchronous sign with a KeyObject made once
// (bench/README.md, issue 18). The parameters per algorithm are the ones JWS prescribes
// (RFC 7518 §3.3–3.5, RFC 8037 §3.1) and jose uses: PKCS#1 v1.5, PSS with a salt as long as the
// hash, ECDSA as r‖s (IEEE P1363), Ed25519 with no digest.

/** oidc-provider's version of the experiment this relies on; a different one makes the Provider refuse to start (config check), never sign differently. */
export const EXTERNAL_SIGNING_ACK = 'experimental-01';

function signOptions(alg: SigningAlg, key: KeyObject): { digest: string | null; key: SignKeyObjectInput | KeyObject } {
  switch (alg) {
    case 'RS256':
      return { digest: 'sha256', key };
    case 'PS256':
      return { digest: 'sha256', key: { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } };
    case 'ES256':
      return { digest: 'sha256', key: { key, dsaEncoding: 'ieee-p1363' } };
    case 'EdDSA':
      return { digest: null, key };
  }
}

export class NodeSigningKey extends ExternalSigningKey {
  readonly #public: KeyObject;
  readonly #digest: string | null;
  readonly #key: SignKeyObjectInput | KeyObject;

  constructor(jwk: JWK & { kid: string; alg: string }) {
    super();
    const privateKey = createPrivateKey({ key: jwk as never, format: 'jwk' });
    this.#public = createPublicKey(privateKey);
    const options = signOptions(jwk.alg as SigningAlg, privateKey);
    if (!options) throw new TypeError(`no signer for alg ${jwk.alg}`);
    this.#digest = options.digest;
    this.#key = options.key;
    // Setters of ExternalSigningKey (its types declare the getters only).
    const self = this as unknown as { kid: string; alg: string };
    self.kid = jwk.kid;
    self.alg = jwk.alg;
  }

  /** The public key: oidc-provider publishes its JWK members. */
  override keyObject(): KeyObject {
    return this.#public;
  }

  override sign(data: Uint8Array): Buffer {
    return sign(this.#digest, data, this.#key);
  }
}

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

/** One signature of `data`. Given a bare KeyObject, node:crypto skips its options parsing, which costs as much as an ES256 signature itself. */
type Signer = (data: Uint8Array) => Buffer;

function signerFor(alg: SigningAlg, key: KeyObject): Signer {
  switch (alg) {
    case 'RS256':
      return (data) => sign('sha256', data, key);
    case 'PS256': {
      const pss: SignKeyObjectInput = { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };
      return (data) => sign('sha256', data, pss);
    }
    case 'ES256':
      // DER from OpenSSL, rewritten as the 64 bytes of r‖s (cheaper than asking for ieee-p1363).
      return (data) => derToP1363(sign('sha256', data, key), 32);
    case 'EdDSA':
      return (data) => sign(null, data, key);
  }
}

/**
 * An ECDSA signature in DER (SEQUENCE { INTEGER r, INTEGER s }) as JWS wants it: r and s
 * big-endian, each left-padded to the curve's size (RFC 7518 §3.4).
 */
export function derToP1363(der: Buffer, size: number): Buffer {
  const out = Buffer.alloc(size * 2);
  // SEQUENCE, then its length: one byte, or 0x81 and one byte (never more for these curves).
  let offset = der[1] & 0x80 ? 3 : 2;
  for (let part = 0; part < 2; part++) {
    if (der[offset] !== 0x02) throw new Error('not a DER ECDSA signature');
    let length = der[offset + 1];
    offset += 2;
    // A leading zero keeps a high bit from reading as a sign.
    while (length > size && der[offset] === 0) {
      offset++;
      length--;
    }
    if (length > size) throw new Error('not a DER ECDSA signature');
    der.copy(out, part * size + size - length, offset, offset + length);
    offset += length;
  }
  return out;
}

export class NodeSigningKey extends ExternalSigningKey {
  readonly #public: KeyObject;
  readonly #sign: Signer;

  constructor(jwk: JWK & { kid: string; alg: string }) {
    super();
    const privateKey = createPrivateKey({ key: jwk as never, format: 'jwk' });
    this.#public = createPublicKey(privateKey);
    const signer = signerFor(jwk.alg as SigningAlg, privateKey);
    if (!signer) throw new TypeError(`no signer for alg ${jwk.alg}`);
    this.#sign = signer;
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
    return this.#sign(data);
  }
}

import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { IssuerKeySet, issuerKeysOf } from './issuer-keys.ts';

// Which key of an issuer's JWKS may verify a JWS (IssuerKeySet.candidates): jose's rules of
// selection (createLocalJWKSet), on the KeyObjects made once per fetched JWKS.

async function publicJwk(alg: string, extra: Record<string, unknown> = {}): Promise<JWK> {
  const { publicKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(publicKey)), ...extra };
}

describe('IssuerKeySet.candidates', () => {
  it('chooses by kid, by the key type and curve of the alg, and by the JWK alg when there is one', async () => {
    const es = await publicJwk('ES256', { kid: 'es' });
    const es384 = await publicJwk('ES384', { kid: 'es384' });
    const rs = await publicJwk('RS256', { kid: 'rs', alg: 'RS256' });
    const ed = await publicJwk('EdDSA', { kid: 'ed' });
    const set = new IssuerKeySet(issuerKeysOf([es, es384, rs, ed]));
    expect(set.candidates('ES256', 'es')).toHaveLength(1);
    expect(set.candidates('ES256', undefined)).toHaveLength(1);
    expect(set.candidates('ES256', 'es384')).toHaveLength(0);
    expect(set.candidates('ES384', 'es384')).toHaveLength(1);
    expect(set.candidates('RS256', 'rs')).toHaveLength(1);
    // The JWK says RS256: not for PS256, though the key would do.
    expect(set.candidates('PS256', 'rs')).toHaveLength(0);
    expect(set.candidates('EdDSA', 'ed')).toHaveLength(1);
    expect(set.candidates('ES256', 'ed')).toHaveLength(0);
    expect(set.candidates('HS256', 'es')).toHaveLength(0);
    expect(set.candidates('none', undefined)).toHaveLength(0);
    expect(set.candidates('ES256', 'nobody')).toHaveLength(0);
  });

  it('leaves out keys for encryption, keys without verify in key_ops, private and symmetric members, and what is no key', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const set = new IssuerKeySet(
      issuerKeysOf([
        await publicJwk('ES256', { kid: 'enc', use: 'enc' }),
        await publicJwk('ES256', { kid: 'ops', key_ops: ['encrypt'] }),
        await publicJwk('ES256', { kid: 'twice', key_ops: ['verify', 'verify'] }),
        { ...(await exportJWK(privateKey)), kid: 'private' },
        { kty: 'oct', k: 'c2VjcmV0', kid: 'oct' },
        { kty: 'EC', crv: 'P-256', x: 'nonsense', kid: 'broken' },
        'not an object',
        null,
      ]),
    );
    for (const kid of ['enc', 'ops', 'twice', 'private', 'oct', 'broken']) expect(set.candidates('ES256', kid)).toHaveLength(0);
    const good = new IssuerKeySet(issuerKeysOf([await publicJwk('ES256', { kid: 'ok', use: 'sig', key_ops: ['verify'] })]));
    expect(good.candidates('ES256', 'ok')).toHaveLength(1);
  });

  it('leaves out RSA keys under 2048 bits', async () => {
    // jose makes no such key: node:crypto does.
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    const set = new IssuerKeySet(issuerKeysOf([{ ...small, kid: 'small' }]));
    expect(set.candidates('RS256', 'small')).toHaveLength(0);
  });

  it('gives every key that fits when the JWS names no kid (the assertion then wants exactly one)', async () => {
    const set = new IssuerKeySet(issuerKeysOf([await publicJwk('ES256', { kid: 'a' }), await publicJwk('ES256', { kid: 'b' })]));
    expect(set.candidates('ES256', undefined)).toHaveLength(2);
  });
});

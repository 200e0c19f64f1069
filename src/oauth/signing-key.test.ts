import { constants, createPublicKey, verify } from 'node:crypto';
import { compactVerify, exportJWK, generateKeyPair, importJWK } from 'jose';
import { SIGNING_ALGS } from '../../config/index.ts';
import { NodeSigningKey, derToP1363 } from './signing-key.ts';

// What oidc-provider asks of an ExternalSigningKey: the public JWK members it publishes, and a
// JWS signature of the bytes it gives. Checked against jose, the library resource servers use.

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('NodeSigningKey', () => {
  it.each(SIGNING_ALGS)('signs %s JWS that jose verifies with the published key, and nothing else', async (alg) => {
    const { privateKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = { ...(await exportJWK(privateKey)), kid: `kid-${alg}`, alg, use: 'sig' };
    const key = new NodeSigningKey(jwk);
    expect([key.kid, key.alg, key.use, key.kty]).toEqual([`kid-${alg}`, alg, 'sig', jwk.kty]);
    // The members oidc-provider publishes come from the public key: the JWK's own, no private one.
    for (const member of ['crv', 'x', 'y', 'n', 'e'] as const) expect([member, key[member]]).toEqual([member, (jwk as Record<string, unknown>)[member]]);
    expect(key.keyObject().type).toBe('public');

    const input = `${b64({ alg, kid: jwk.kid, typ: 'at+jwt' })}.${b64({ sub: 'agent', iat: 1 })}`;
    const jws = `${input}.${Buffer.from(key.sign(Buffer.from(input))).toString('base64url')}`;
    const publicJwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, n: jwk.n, e: jwk.e };
    const verified = await compactVerify(jws, await importJWK(publicJwk, alg));
    expect(verified.protectedHeader).toMatchObject({ alg, kid: jwk.kid });

    const [h, p, s] = jws.split('.');
    const altered = `${h}.${b64({ sub: 'someone-else', iat: 1 })}.${s}`;
    await expect(compactVerify(altered, await importJWK(publicJwk, alg))).rejects.toThrow();
    expect(p).toBe(b64({ sub: 'agent', iat: 1 }));
  });

  it('rewrites DER ECDSA signatures as r‖s, whatever the lengths of r and s', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const key = new NodeSigningKey({ ...(await exportJWK(privateKey)), kid: 'e', alg: 'ES256' });
    const pub = createPublicKey({ key: (await exportJWK(publicKey)) as never, format: 'jwk' });
    // 400 signatures: some r or s has a leading zero byte (1 in 128 each), some needs the DER pad byte (1 in 2).
    for (let i = 0; i < 400; i++) {
      const data = Buffer.from(`message ${i}`);
      const signature = key.sign(data);
      expect(signature).toHaveLength(64);
      expect(verify('sha256', data, { key: pub, dsaEncoding: 'ieee-p1363' }, signature)).toBe(true);
    }
    // r = 1, s = 0x80 (padded in DER): 31 zero bytes then 01, 31 zero bytes then 80.
    const der = Buffer.from([0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80]);
    expect(derToP1363(der, 32).toString('hex')).toBe('00'.repeat(31) + '01' + '00'.repeat(31) + '80');
    expect(() => derToP1363(Buffer.from([0x30, 0x03, 0x04, 0x01, 0x01]), 32)).toThrow();
  });

  it('signs ECDSA as r‖s and PSS with a salt as long as the hash, as JWS requires', async () => {
    const ec = await generateKeyPair('ES256', { extractable: true });
    const es = new NodeSigningKey({ ...(await exportJWK(ec.privateKey)), kid: 'e', alg: 'ES256' });
    expect(es.sign(Buffer.from('x'))).toHaveLength(64);
    const rsa = await generateKeyPair('PS256', { extractable: true });
    const ps = new NodeSigningKey({ ...(await exportJWK(rsa.privateKey)), kid: 'p', alg: 'PS256' });
    const signature = ps.sign(Buffer.from('x'));
    const publicKey = createPublicKey({ key: (await exportJWK(rsa.publicKey)) as never, format: 'jwk' });
    const pss = (saltLength: number) => verify('sha256', Buffer.from('x'), { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, signature);
    expect(pss(32)).toBe(true);
    expect(pss(20)).toBe(false);
  });
});

import { KeyObject, constants, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { CompactSign, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { keyFitsAlg, parseCompactJws, verifyJwsSignature } from './jws-verify.ts';

// The JWS signature check of the jwt-bearer grant (jws-verify.ts) against JWSs that jose signs:
// every algorithm verifies what jose signed, and nothing else verifies: a changed header, payload
// or signature, a key of another type or curve than the alg's, HS* and none, RSA-PSS with another
// salt length, ECDSA signatures in DER form (JWS uses R || S, RFC 7518 §3.4).

const PAYLOAD = new TextEncoder().encode(JSON.stringify({ iss: 'https://ci.example.com', sub: 'repo:acme/app', aud: 'https://idp.example.com' }));

interface Signer {
  alg: string;
  privateKey: CryptoKey;
  /** The public key as issuer-keys.ts makes it: from the JWK. */
  publicKey: KeyObject;
}

async function signer(alg: string, options: { crv?: string; modulusLength?: number } = {}): Promise<Signer> {
  const pair = await generateKeyPair(alg, { extractable: true, ...options });
  return { alg, privateKey: pair.privateKey, publicKey: createPublicKey({ key: (await exportJWK(pair.publicKey)) as never, format: 'jwk' }) };
}

function jws(s: Signer, header: Record<string, unknown> = {}, payload: Uint8Array = PAYLOAD): Promise<string> {
  return new CompactSign(payload).setProtectedHeader({ alg: s.alg, kid: 'k1', ...header }).sign(s.privateKey);
}

function check(token: string, alg: string, key: KeyObject): boolean {
  const parsed = parseCompactJws(token);
  if (!parsed) throw new Error(`not a compact JWS: ${token}`);
  return verifyJwsSignature(alg, key, parsed.signingInput, parsed.signature);
}

const ALGS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'];
const signers = new Map<string, Signer>();

beforeAll(async () => {
  for (const alg of ALGS) signers.set(alg, await signer(alg));
});
const the = (alg: string) => signers.get(alg)!;

describe('verifyJwsSignature', () => {
  it.each(ALGS)('verifies what jose signed with %s', async (alg) => {
    expect(check(await jws(the(alg)), alg, the(alg).publicKey)).toBe(true);
  });

  it('verifies EdDSA under its RFC 9864 name Ed25519 too', async () => {
    const ed = { ...the('EdDSA'), alg: 'Ed25519' };
    expect(check(await jws(ed), 'Ed25519', ed.publicKey)).toBe(true);
  });

  it.each(ALGS)('refuses a %s JWS whose payload, header or signature was changed', async (alg) => {
    const s = the(alg);
    const [header, payload, signature] = (await jws(s)).split('.');
    const otherPayload = Buffer.from(JSON.stringify({ iss: 'https://ci.example.com', sub: 'repo:acme/other', aud: 'https://idp.example.com' })).toString(
      'base64url',
    );
    expect(check(`${header}.${otherPayload}.${signature}`, alg, s.publicKey)).toBe(false);
    const otherHeader = Buffer.from(JSON.stringify({ alg, kid: 'k2' })).toString('base64url');
    expect(check(`${otherHeader}.${payload}.${signature}`, alg, s.publicKey)).toBe(false);
    const bytes = Buffer.from(signature, 'base64url');
    bytes[bytes.length >> 1] ^= 0x01;
    expect(check(`${header}.${payload}.${bytes.toString('base64url')}`, alg, s.publicKey)).toBe(false);
    // A signature made by another key of the same kind.
    const other = await signer(alg);
    expect(check(await jws(other), alg, s.publicKey)).toBe(false);
  });

  it('refuses a key of another type or curve than the alg names', async () => {
    const rs = await jws(the('RS256'));
    expect(check(rs, 'RS256', the('ES256').publicKey)).toBe(false);
    expect(check(rs, 'ES256', the('RS256').publicKey)).toBe(false);
    expect(check(rs, 'EdDSA', the('RS256').publicKey)).toBe(false);
    expect(check(await jws(the('ES256')), 'ES256', the('ES384').publicKey)).toBe(false);
    expect(check(await jws(the('ES384')), 'ES256', the('ES384').publicKey)).toBe(false);
    expect(check(await jws(the('EdDSA')), 'ES256', the('EdDSA').publicKey)).toBe(false);
    // The same RSA key under the other padding: RS256 is not PS256.
    expect(check(await jws(the('PS256')), 'RS256', the('PS256').publicKey)).toBe(false);
    expect(check(await jws(the('RS256')), 'PS256', the('RS256').publicKey)).toBe(false);
    // Another digest of the same family.
    expect(check(await jws(the('RS384')), 'RS256', the('RS384').publicKey)).toBe(false);
  });

  it('refuses HS*, none and unknown algs whatever the key', async () => {
    const secret = new TextEncoder().encode('a shared secret of at least 32 bytes!!');
    const hs = await new CompactSign(PAYLOAD).setProtectedHeader({ alg: 'HS256' }).sign(secret);
    for (const key of [the('RS256').publicKey, the('ES256').publicKey, the('EdDSA').publicKey]) {
      expect(check(hs, 'HS256', key)).toBe(false);
      expect(check(`${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(PAYLOAD).toString('base64url')}.`, 'none', key)).toBe(false);
      expect(check(hs, 'toString', key)).toBe(false);
      expect(check(hs, '__proto__', key)).toBe(false);
    }
    expect(keyFitsAlg('HS256', the('RS256').publicKey)).toBe(false);
  });

  it('refuses ECDSA signatures in DER form (JWS uses R || S, RFC 7518 §3.4)', async () => {
    for (const alg of ['ES256', 'ES384', 'ES512']) {
      const s = the(alg);
      const [header, payload] = (await jws(s)).split('.');
      const input = Buffer.from(`${header}.${payload}`);
      const digest = `sha${alg.slice(2)}`;
      const der = sign(digest, input, KeyObject.from(s.privateKey));
      // The DER signature is a good one (node checks it in DER form): only its encoding is refused.
      expect(verify(digest, input, s.publicKey, der)).toBe(true);
      expect(check(`${header}.${payload}.${der.toString('base64url')}`, alg, s.publicKey)).toBe(false);
      const p1363 = sign(digest, input, { key: KeyObject.from(s.privateKey), dsaEncoding: 'ieee-p1363' });
      expect(check(`${header}.${payload}.${p1363.toString('base64url')}`, alg, s.publicKey)).toBe(true);
    }
  });

  it('wants the RSA-PSS salt as long as the digest (RFC 7518 §3.5)', async () => {
    const s = the('PS256');
    const [header, payload] = (await jws(s)).split('.');
    const input = Buffer.from(`${header}.${payload}`);
    const withSalt = (saltLength: number) =>
      sign('sha256', input, { key: KeyObject.from(s.privateKey), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }).toString('base64url');
    expect(check(`${header}.${payload}.${withSalt(32)}`, 'PS256', s.publicKey)).toBe(true);
    expect(check(`${header}.${payload}.${withSalt(20)}`, 'PS256', s.publicKey)).toBe(false);
    expect(check(`${header}.${payload}.${withSalt(0)}`, 'PS256', s.publicKey)).toBe(false);
  });

  it('refuses RSA keys under 2048 bits and private keys', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const input = 'eyJhbGciOiJSUzI1NiJ9.e30';
    const signature = sign('sha256', Buffer.from(input), small.privateKey);
    expect(verify('sha256', Buffer.from(input), small.publicKey, signature)).toBe(true);
    expect(verifyJwsSignature('RS256', small.publicKey, input, signature)).toBe(false);
    const big = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(verifyJwsSignature('RS256', big.privateKey, input, sign('sha256', Buffer.from(input), big.privateKey))).toBe(false);
    expect(verifyJwsSignature('RS256', big.publicKey, input, sign('sha256', Buffer.from(input), big.privateKey))).toBe(true);
  });
});

describe('parseCompactJws', () => {
  it('splits a compact JWS into its header, signing input, payload and signature', async () => {
    const token = await jws(the('ES256'), { typ: 'JWT' });
    const parsed = parseCompactJws(token)!;
    expect(parsed.header).toEqual({ alg: 'ES256', kid: 'k1', typ: 'JWT' });
    expect(parsed.signingInput).toBe(token.slice(0, token.lastIndexOf('.')));
    expect(Buffer.from(parsed.encodedPayload, 'base64url')).toEqual(Buffer.from(PAYLOAD));
    expect(parsed.signature).toHaveLength(64);
  });

  it('refuses what is not three base64url parts with a JSON object as header', async () => {
    const [header, payload, signature] = (await jws(the('ES256'))).split('.');
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const bad of [
      `${header}.${payload}`,
      `${header}.${payload}.${signature}.x`,
      `.${payload}.${signature}`,
      `${header}.${payload}.${signature}=`,
      `${header}.${payload}+.${signature}`,
      `${header}.${payload}.${signature.slice(0, 10)}!${signature.slice(10)}`,
      `${b64(['ES256'])}.${payload}.${signature}`,
      `${b64('ES256')}.${payload}.${signature}`,
      `${Buffer.from('{not json').toString('base64url')}.${payload}.${signature}`,
      'not-a-jwt',
    ]) {
      expect(parseCompactJws(bad)).toBeUndefined();
    }
  });
});

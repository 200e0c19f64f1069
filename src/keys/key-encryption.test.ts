import { randomBytes } from 'node:crypto';
import { decryptPrivateKey, encryptPrivateKey, encryptionKeyId, KeyEncryptionError } from './key-encryption.ts';

describe('private key encryption (AES-256-GCM)', () => {
  const master = randomBytes(32);

  it('round-trips, with a fresh IV each time', () => {
    const a = encryptPrivateKey(master, '{"d":"secret"}', 'kid-1');
    const b = encryptPrivateKey(master, '{"d":"secret"}', 'kid-1');
    expect(a).not.toBe(b);
    expect(a).not.toContain('secret');
    expect(decryptPrivateKey(master, a, 'kid-1')).toBe('{"d":"secret"}');
  });

  it('refuses another master key, another kid, or a tampered ciphertext', () => {
    const stored = encryptPrivateKey(master, 'payload', 'kid-1');
    expect(() => decryptPrivateKey(randomBytes(32), stored, 'kid-1')).toThrow(KeyEncryptionError);
    expect(() => decryptPrivateKey(master, stored, 'kid-2')).toThrow(KeyEncryptionError);
    const [iv, tag, data] = stored.split('.');
    const flipped = Buffer.from(data, 'base64url');
    flipped[0] ^= 1;
    expect(() => decryptPrivateKey(master, [iv, tag, flipped.toString('base64url')].join('.'), 'kid-1')).toThrow(KeyEncryptionError);
    expect(() => decryptPrivateKey(master, 'garbage', 'kid-1')).toThrow(KeyEncryptionError);
  });

  it('names the master key by a fingerprint that does not reveal it', () => {
    expect(encryptionKeyId(master)).toMatch(/^[0-9a-f]{16}$/);
    expect(encryptionKeyId(master)).toBe(encryptionKeyId(Buffer.from(master)));
    expect(encryptionKeyId(master)).not.toBe(encryptionKeyId(randomBytes(32)));
  });
});

import { EntitySchema } from 'typeorm';
import type { JWK } from 'jose';
import type { SigningAlg } from '../../config/index.ts';

export type KeyStatus = 'next' | 'active' | 'retired' | 'revoked';

export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  status: KeyStatus;
  publicJwk: JWK;
  /** AES-256-GCM ciphertext of the private JWK (see key-encryption.ts). */
  privateKeyEnc: string;
  encryptionKeyId: string;
  createdAt: Date;
  activatedAt: Date | null;
  retiredAt: Date | null;
  revokedAt: Date | null;
}

export const SigningKeyEntity = new EntitySchema<SigningKey>({
  name: 'SigningKey',
  tableName: 'signing_keys',
  columns: {
    kid: { type: 'text', primary: true },
    alg: { type: 'text' },
    status: { type: 'text' },
    publicJwk: { type: 'jsonb', name: 'public_jwk' },
    privateKeyEnc: { type: 'text', name: 'private_key_enc' },
    encryptionKeyId: { type: 'text', name: 'encryption_key_id' },
    createdAt: { type: 'timestamptz', name: 'created_at' },
    activatedAt: { type: 'timestamptz', name: 'activated_at', nullable: true },
    retiredAt: { type: 'timestamptz', name: 'retired_at', nullable: true },
    revokedAt: { type: 'timestamptz', name: 'revoked_at', nullable: true },
  },
});

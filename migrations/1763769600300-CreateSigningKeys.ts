import type { MigrationInterface, QueryRunner } from 'typeorm';

// Token signing keys. The private half is AES-256-GCM ciphertext under KEY_ENCRYPTION_KEY;
// encryption_key_id names which master key, so that the master key can be rotated later.
export class CreateSigningKeys1763769600300 implements MigrationInterface {
  name = 'CreateSigningKeys1763769600300';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE signing_keys (
        kid                 text PRIMARY KEY,
        alg                 text NOT NULL CHECK (alg IN ('RS256', 'PS256', 'ES256', 'EdDSA')),
        status              text NOT NULL CHECK (status IN ('next', 'active', 'retired', 'revoked')),
        public_jwk          jsonb NOT NULL,
        private_key_enc     text NOT NULL,
        encryption_key_id   text NOT NULL,
        created_at          timestamptz NOT NULL DEFAULT now(),
        activated_at        timestamptz,
        retired_at          timestamptz,
        revoked_at          timestamptz
      )`);
    // Exactly one key signs at a time.
    await q.query(`CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE signing_keys`);
  }
}

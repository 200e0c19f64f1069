import { EntitySchema } from 'typeorm';

/** What a secret check needs of a credential (kept in memory: src/coherence). */
export type CredentialSecrets = Pick<Credential, 'id' | 'agentId' | 'status' | 'expiresAt' | 'secretHash' | 'previousSecretHash' | 'previousExpiresAt'>;

export interface Credential {
  id: string;
  agentId: string;
  orgId: string;
  /** bcrypt hash of the current secret. */
  secretHash: string;
  /** bcrypt hash of the secret replaced by the last rotation, valid until previousExpiresAt. */
  previousSecretHash: string | null;
  previousExpiresAt: Date | null;
  status: 'active' | 'revoked';
  createdAt: Date;
  expiresAt: Date | null;
  rotatedAt: Date | null;
  revokedAt: Date | null;
}

export const CredentialEntity = new EntitySchema<Credential>({
  name: 'Credential',
  tableName: 'credentials',
  columns: {
    id: { type: 'uuid', primary: true },
    agentId: { type: 'uuid', name: 'agent_id' },
    orgId: { type: 'uuid', name: 'org_id' },
    secretHash: { type: 'text', name: 'secret_hash' },
    previousSecretHash: { type: 'text', name: 'previous_secret_hash', nullable: true },
    previousExpiresAt: { type: 'timestamptz', name: 'previous_expires_at', nullable: true },
    status: { type: 'text', default: 'active' },
    createdAt: { type: 'timestamptz', name: 'created_at' },
    expiresAt: { type: 'timestamptz', name: 'expires_at', nullable: true },
    rotatedAt: { type: 'timestamptz', name: 'rotated_at', nullable: true },
    revokedAt: { type: 'timestamptz', name: 'revoked_at', nullable: true },
  },
});

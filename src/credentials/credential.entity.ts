import { EntitySchema } from 'typeorm';

/** What a secret check needs of a credential (kept in memory: src/coherence). */
export type CredentialSecrets = Pick<Credential, 'id' | 'agentId' | 'status' | 'expiresAt' | 'secretHash' | 'previousSecretHash' | 'previousExpiresAt'>;

/** What client authentication with a key needs of a key credential (kept in memory: src/coherence). */
export type CredentialKey = Pick<
  Credential,
  'id' | 'agentId' | 'status' | 'expiresAt' | 'kid' | 'publicJwk' | 'previousKid' | 'previousPublicJwk' | 'previousExpiresAt'
>;

/** A client secret, or a public key the agent signs client assertions with (RFC 7523 private_key_jwt). */
export type CredentialType = 'secret' | 'private_key_jwt';

/** A public JWK as stored: public members only, with `kid` its RFC 7638 thumbprint, `alg` and `use: "sig"`. */
export type PublicJwk = Record<string, string>;

export interface Credential {
  id: string;
  agentId: string;
  orgId: string;
  type: CredentialType;
  /** Unique among the agent's credentials, when given. */
  name: string | null;
  /** bcrypt hash of the current secret (secrets only). */
  secretHash: string | null;
  /** Key credentials: the RFC 7638 thumbprint of the public key, its algorithm and the key. */
  kid: string | null;
  alg: string | null;
  publicJwk: PublicJwk | null;
  /** Key credentials: the server generated the pair (a rotation generates a new one) or the agent brought the public key. */
  generated: boolean | null;
  /** The key replaced by the last rotation, accepted until previousExpiresAt. */
  previousKid: string | null;
  previousPublicJwk: PublicJwk | null;
  /** bcrypt hash of the secret replaced by the last rotation, valid until previousExpiresAt (secrets). */
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
    type: { type: 'text', default: 'secret' },
    name: { type: 'text', nullable: true },
    secretHash: { type: 'text', name: 'secret_hash', nullable: true },
    kid: { type: 'text', nullable: true },
    alg: { type: 'text', nullable: true },
    publicJwk: { type: 'jsonb', name: 'public_jwk', nullable: true },
    generated: { type: 'boolean', nullable: true },
    previousKid: { type: 'text', name: 'previous_kid', nullable: true },
    previousPublicJwk: { type: 'jsonb', name: 'previous_public_jwk', nullable: true },
    previousSecretHash: { type: 'text', name: 'previous_secret_hash', nullable: true },
    previousExpiresAt: { type: 'timestamptz', name: 'previous_expires_at', nullable: true },
    status: { type: 'text', default: 'active' },
    createdAt: { type: 'timestamptz', name: 'created_at' },
    expiresAt: { type: 'timestamptz', name: 'expires_at', nullable: true },
    rotatedAt: { type: 'timestamptz', name: 'rotated_at', nullable: true },
    revokedAt: { type: 'timestamptz', name: 'revoked_at', nullable: true },
  },
});

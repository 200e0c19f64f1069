import { type DataSource, type EntityManager, IsNull, LessThanOrEqual, MoreThan } from 'typeorm';
import { CredentialEntity, type Credential } from './credential.entity.ts';
import { offsetOf, type PageRequest } from '../db/pagination.ts';

export type CredentialFilter = 'active' | 'revoked' | 'expired';

/** The columns of a credential as plain SQL reads them (hot paths), and their mapping. */
const CREDENTIAL_COLUMNS = `id, agent_id, org_id, type, name, secret_hash, previous_secret_hash, previous_expires_at, kid, alg, public_jwk, generated,
  previous_kid, previous_public_jwk, status, created_at, expires_at, rotated_at, revoked_at`;

interface CredentialRow {
  id: string;
  agent_id: string;
  org_id: string;
  type: Credential['type'];
  name: string | null;
  secret_hash: string | null;
  previous_secret_hash: string | null;
  previous_expires_at: Date | null;
  kid: string | null;
  alg: string | null;
  public_jwk: Credential['publicJwk'];
  generated: boolean | null;
  previous_kid: string | null;
  previous_public_jwk: Credential['publicJwk'];
  status: Credential['status'];
  created_at: Date;
  expires_at: Date | null;
  rotated_at: Date | null;
  revoked_at: Date | null;
}

function credentialFromRow(r: CredentialRow): Credential {
  return {
    id: r.id,
    agentId: r.agent_id,
    orgId: r.org_id,
    type: r.type,
    name: r.name,
    secretHash: r.secret_hash,
    previousSecretHash: r.previous_secret_hash,
    previousExpiresAt: r.previous_expires_at,
    kid: r.kid,
    alg: r.alg,
    publicJwk: r.public_jwk,
    generated: r.generated,
    previousKid: r.previous_kid,
    previousPublicJwk: r.previous_public_jwk,
    status: r.status,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    rotatedAt: r.rotated_at,
    revokedAt: r.revoked_at,
  };
}

// Every change is announced to the other instances by the trigger credentials_notify_state
// (`credential:<id>` on agent_idp_state, migrations/1763769600600-CreateStateNotifications.ts).
export class CredentialsRepository {
  readonly #ds: DataSource;

  constructor(dataSource: DataSource) {
    this.#ds = dataSource;
  }

  #repo(manager?: EntityManager) {
    return (manager ?? this.#ds.manager).getRepository(CredentialEntity);
  }

  async insert(credential: Credential, manager?: EntityManager): Promise<void> {
    await this.#repo(manager).insert(credential);
  }

  async findInOrg(orgId: string, agentId: string, id: string, manager?: EntityManager): Promise<Credential | null> {
    return this.#repo(manager).findOneBy({ orgId, agentId, id });
  }

  /**
   * The credential a client secret names, whatever its state (client authentication knows only
   * the client id). On the hot path of every client authentication: plain SQL.
   */
  async findOfAgent(agentId: string, id: string): Promise<Credential | null> {
    const rows: CredentialRow[] = await this.#ds.query(`SELECT ${CREDENTIAL_COLUMNS} FROM credentials WHERE id = $1 AND agent_id = $2`, [id, agentId]);
    return rows.length ? credentialFromRow(rows[0]) : null;
  }

  /** Whether the agent has a credential of this name (names are unique per agent; an index holds it under concurrency too). */
  async nameTaken(agentId: string, name: string, manager?: EntityManager): Promise<boolean> {
    return this.#repo(manager).exists({ where: { agentId, name } });
  }

  /** The agent's key credentials that are active now with this key (current or, in a grace period, previous). */
  async activeWithKid(agentId: string, kid: string, manager?: EntityManager): Promise<boolean> {
    const rows: unknown[] = await (manager ?? this.#ds.manager).query(
      `SELECT 1 FROM credentials WHERE agent_id = $1 AND type = 'private_key_jwt' AND status = 'active'
          AND (kid = $2 OR (previous_kid = $2 AND previous_expires_at > now())) LIMIT 1`,
      [agentId, kid],
    );
    return rows.length > 0;
  }

  /** The public keys of an agent's usable key credentials (active, not expired; a replaced key while its grace period runs). */
  async usablePublicKeys(agentId: string): Promise<Credential[]> {
    const rows: CredentialRow[] = await this.#ds.query(
      `SELECT ${CREDENTIAL_COLUMNS} FROM credentials
        WHERE agent_id = $1 AND type = 'private_key_jwt' AND status = 'active' AND (expires_at IS NULL OR expires_at > now())
        ORDER BY created_at, id`,
      [agentId],
    );
    return rows.map(credentialFromRow);
  }

  async list(orgId: string, agentId: string, status: CredentialFilter | undefined, page: PageRequest) {
    const now = new Date();
    const where =
      status === 'revoked'
        ? [{ orgId, agentId, status: 'revoked' as const }]
        : status === 'expired'
          ? [{ orgId, agentId, status: 'active' as const, expiresAt: LessThanOrEqual(now) }]
          : status === 'active'
            ? [
                { orgId, agentId, status: 'active' as const, expiresAt: IsNull() },
                { orgId, agentId, status: 'active' as const, expiresAt: MoreThan(now) },
              ]
            : [{ orgId, agentId }];
    const [rows, total] = await this.#repo().findAndCount({
      where,
      order: { createdAt: 'ASC', id: 'ASC' },
      skip: offsetOf(page),
      take: page.limit,
    });
    return { rows, total };
  }

  /** What the org's maxActiveCredentialsPerAgent counts: the agent's active, unexpired credentials. */
  async countActive(orgId: string, agentId: string, manager?: EntityManager): Promise<number> {
    const now = new Date();
    return this.#repo(manager).count({
      where: [
        { orgId, agentId, status: 'active', expiresAt: IsNull() },
        { orgId, agentId, status: 'active', expiresAt: MoreThan(now) },
      ],
    });
  }

  async update(orgId: string, id: string, changes: Partial<Credential>, manager?: EntityManager): Promise<void> {
    await this.#repo(manager).update({ orgId, id }, changes);
  }

  async revokeAllOfAgent(orgId: string, agentId: string, at: Date, manager?: EntityManager): Promise<string[]> {
    // PostgreSQL UPDATE … RETURNING answers [rows, rowCount] through TypeORM.
    const [rows]: [{ id: string }[], number] = await (manager ?? this.#ds.manager).query(
      `UPDATE credentials SET status = 'revoked', revoked_at = $3
        WHERE org_id = $1 AND agent_id = $2 AND status = 'active' RETURNING id`,
      [orgId, agentId, at],
    );
    return rows.map((r) => r.id);
  }
}

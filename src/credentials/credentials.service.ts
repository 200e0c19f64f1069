import { randomUUID } from 'node:crypto';
import bcrypt from 'bcrypt';
import type { DataSource, EntityManager } from 'typeorm';
import type { Credential, CredentialSecrets } from './credential.entity.ts';
import type { CredentialsRepository, CredentialFilter } from './credentials.repository.ts';
import type { AgentsRepository } from '../agents/agents.repository.ts';
import type { Agent } from '../agents/agent.entity.ts';
import type { OrgsRepository } from '../orgs/orgs.repository.ts';
import { assertBelowLimit } from '../policies/limits.ts';
import { credentialIdOf, generateSecret, secretDigest } from './secrets.ts';
import type { SecretMemory } from './secret-memory.ts';
import { Conflict, NotFound, ValidationFailed } from '../http/errors.ts';
import type { PageRequest } from '../db/pagination.ts';

export type SecretCheck =
  | { ok: true; credentialId: string }
  | { ok: false; reason: 'malformed_secret' | 'unknown_credential' | 'credential_revoked' | 'credential_expired' | 'bad_secret' };

export interface IssuedCredential {
  credential: Credential;
  secret: string;
}

export class CredentialsService {
  readonly #ds: DataSource;
  readonly #repo: CredentialsRepository;
  readonly #agents: Pick<AgentsRepository, 'findInOrg' | 'lockInOrg'>;
  readonly #orgs: Pick<OrgsRepository, 'limitsOf'>;
  readonly #bcryptCost: number;
  readonly memory: SecretMemory;

  constructor(
    dataSource: DataSource,
    repos: { credentials: CredentialsRepository; agents: Pick<AgentsRepository, 'findInOrg' | 'lockInOrg'>; orgs: Pick<OrgsRepository, 'limitsOf'> },
    memory: SecretMemory,
    options: { bcryptCost: number },
  ) {
    this.#ds = dataSource;
    this.#repo = repos.credentials;
    this.#agents = repos.agents;
    this.#orgs = repos.orgs;
    this.memory = memory;
    this.#bcryptCost = options.bcryptCost;
  }

  /** A new credential for an agent, not yet stored: the caller inserts it (maybe in a transaction). */
  async mint(agent: Pick<Agent, 'id' | 'orgId'>, expiresAt: Date | null, id: string = randomUUID()): Promise<IssuedCredential> {
    const secret = generateSecret(id);
    return { secret, credential: await this.#hashed(agent, id, secret, expiresAt) };
  }

  /** A credential for a secret chosen outside (the bootstrap admin's); it must name `id`. */
  async fromSecret(agent: Pick<Agent, 'id' | 'orgId'>, secret: string): Promise<Credential> {
    const id = credentialIdOf(secret);
    if (!id) throw new Error('not an agent-idp client secret');
    return this.#hashed(agent, id, secret, null);
  }

  async #hashed(agent: Pick<Agent, 'id' | 'orgId'>, id: string, secret: string, expiresAt: Date | null): Promise<Credential> {
    return {
      id,
      agentId: agent.id,
      orgId: agent.orgId,
      secretHash: await bcrypt.hash(secretDigest(secret), this.#bcryptCost),
      previousSecretHash: null,
      previousExpiresAt: null,
      status: 'active',
      createdAt: new Date(),
      expiresAt,
      rotatedAt: null,
      revokedAt: null,
    };
  }

  async #changeableAgent(orgId: string, agentId: string): Promise<Agent> {
    const agent = await this.#agents.findInOrg(orgId, agentId);
    if (!agent) throw new NotFound(`agent ${agentId} not found`);
    if (agent.status === 'decommissioned') {
      throw new Conflict('agent_decommissioned', `agent ${agentId} is decommissioned; its credentials cannot change`);
    }
    return agent;
  }

  async create(orgId: string, agentId: string, input: { expiresAt?: string }): Promise<IssuedCredential> {
    const expiresAt = input.expiresAt === undefined ? null : new Date(input.expiresAt);
    if (expiresAt && expiresAt.getTime() <= Date.now()) {
      throw new ValidationFailed('expiresAt must be in the future', [{ field: '/expiresAt', message: 'must be in the future' }]);
    }
    const agent = await this.#changeableAgent(orgId, agentId);
    // Checked once before bcrypt, so that a refused request costs no hashing ...
    assertBelowLimit(await this.#orgs.limitsOf(orgId), 'maxActiveCredentialsPerAgent', await this.#repo.countActive(orgId, agentId));
    const issued = await this.mint(agent, expiresAt);
    // ... and again where it counts: under the agent's row lock, with the insert, so that
    // concurrent creates cannot both take the last place (nor a decommission slip in between).
    await this.#ds.transaction(async (manager) => {
      const locked = await this.#agents.lockInOrg(orgId, agentId, manager);
      if (!locked) throw new NotFound(`agent ${agentId} not found`);
      if (locked.status === 'decommissioned') {
        throw new Conflict('agent_decommissioned', `agent ${agentId} is decommissioned; its credentials cannot change`);
      }
      const limits = await this.#orgs.limitsOf(orgId, manager);
      assertBelowLimit(limits, 'maxActiveCredentialsPerAgent', await this.#repo.countActive(orgId, agentId, manager));
      await this.#repo.insert(issued.credential, manager);
    });
    return issued;
  }

  async list(orgId: string, agentId: string, status: CredentialFilter | undefined, page: PageRequest) {
    if (!(await this.#agents.findInOrg(orgId, agentId))) throw new NotFound(`agent ${agentId} not found`);
    return this.#repo.list(orgId, agentId, status, page);
  }

  async #existing(orgId: string, agentId: string, credentialId: string): Promise<Credential> {
    const credential = await this.#repo.findInOrg(orgId, agentId, credentialId);
    if (!credential) throw new NotFound(`credential ${credentialId} not found`);
    return credential;
  }

  /** A new secret under the same credential id; the old one keeps working for the grace period. */
  async rotate(orgId: string, agentId: string, credentialId: string, input: { gracePeriodSeconds?: number }): Promise<IssuedCredential> {
    const agent = await this.#changeableAgent(orgId, agentId);
    const current = await this.#existing(orgId, agentId, credentialId);
    if (current.status === 'revoked') throw new Conflict('credential_revoked', `credential ${credentialId} is revoked and cannot be rotated`);
    if (current.expiresAt && current.expiresAt.getTime() <= Date.now()) {
      throw new Conflict('credential_expired', `credential ${credentialId} has expired; create a new credential instead`);
    }
    const grace = input.gracePeriodSeconds ?? 0;
    const now = new Date();
    const { secret, credential: fresh } = await this.mint(agent, current.expiresAt, credentialId);
    const changes: Partial<Credential> = {
      secretHash: fresh.secretHash,
      previousSecretHash: grace > 0 ? current.secretHash : null,
      previousExpiresAt: grace > 0 ? new Date(now.getTime() + grace * 1000) : null,
      rotatedAt: now,
    };
    await this.#repo.update(orgId, credentialId, changes);
    this.memory.forgetCredential(credentialId);
    return { secret, credential: { ...current, ...changes } };
  }

  /** Revokes a credential; revoking one that is already revoked changes nothing (and answers false). */
  async revoke(orgId: string, agentId: string, credentialId: string): Promise<boolean> {
    if (!(await this.#agents.findInOrg(orgId, agentId))) throw new NotFound(`agent ${agentId} not found`);
    const credential = await this.#existing(orgId, agentId, credentialId);
    this.memory.forgetCredential(credentialId);
    if (credential.status === 'revoked') return false;
    await this.#repo.update(orgId, credentialId, { status: 'revoked', revokedAt: new Date(), previousSecretHash: null, previousExpiresAt: null });
    return true;
  }

  /**
   * Client authentication: does `secret` open agent `agentId`? One bcrypt compare at most for
   * the current secret (the secret names its credential), a second only for a secret replaced
   * by a rotation still in its grace period; none when the secret was verified moments ago.
   */
  async verifySecret(agentId: string, secret: string, prefetched?: CredentialSecrets | null): Promise<SecretCheck> {
    const credentialId = credentialIdOf(secret);
    if (!credentialId) return { ok: false, reason: 'malformed_secret' };
    // `prefetched`: the row read with the agent in the same query (AgentsRepository.findActiveWithCredential).
    const credential =
      prefetched !== undefined && (prefetched === null || (prefetched.id === credentialId && prefetched.agentId === agentId))
        ? prefetched
        : await this.#repo.findOfAgent(agentId, credentialId);
    if (!credential) return { ok: false, reason: 'unknown_credential' };
    if (credential.status === 'revoked') return { ok: false, reason: 'credential_revoked' };
    if (credential.expiresAt && credential.expiresAt.getTime() <= Date.now()) return { ok: false, reason: 'credential_expired' };

    const hashes = [credential.secretHash];
    if (credential.previousSecretHash && credential.previousExpiresAt && credential.previousExpiresAt.getTime() > Date.now()) {
      hashes.push(credential.previousSecretHash);
    }
    // bcrypt reads at most 72 bytes and our secrets are 84 characters long: it is fed the
    // SHA-256 digest, so that every character of the secret counts.
    const digest = secretDigest(secret);
    const remembered = this.memory.recall(digest, credentialId);
    if (remembered !== undefined && hashes.includes(remembered)) return { ok: true, credentialId };

    for (const hash of hashes) {
      if (await bcrypt.compare(digest, hash)) {
        this.memory.remember(digest, credentialId, hash);
        return { ok: true, credentialId };
      }
    }
    return { ok: false, reason: 'bad_secret' };
  }

  async revokeAllOfAgent(orgId: string, agentId: string, manager?: EntityManager): Promise<string[]> {
    const ids = await this.#repo.revokeAllOfAgent(orgId, agentId, new Date(), manager);
    for (const id of ids) this.memory.forgetCredential(id);
    return ids;
  }
}

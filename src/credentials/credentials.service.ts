import { randomUUID } from 'node:crypto';
import bcrypt from 'bcrypt';
import type { DataSource, EntityManager } from 'typeorm';
import type { JWK } from 'jose';
import type { SigningAlg } from '../../config/index.ts';
import type { Credential, CredentialSecrets, CredentialType, PublicJwk } from './credential.entity.ts';
import { acceptPublicJwk, generateKeyPairFor } from './key-pairs.ts';
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

/** A credential as created or rotated: a secret's plaintext, or a generated key's private half, shown once. */
export interface CreatedCredential {
  credential: Credential;
  secret?: string;
  privateKey?: { pem: string; jwk: JWK };
}

export interface CreateCredentialInput {
  type?: CredentialType;
  name?: string;
  expiresAt?: string;
  alg?: SigningAlg;
  publicJwk?: unknown;
}

export interface RotateCredentialInput {
  gracePeriodSeconds?: number;
  publicJwk?: unknown;
}

export class CredentialsService {
  readonly #ds: DataSource;
  readonly #repo: CredentialsRepository;
  readonly #agents: Pick<AgentsRepository, 'findInOrg' | 'lockInOrg' | 'statusById'>;
  readonly #orgs: Pick<OrgsRepository, 'limitsOf'>;
  readonly #bcryptCost: number;
  readonly memory: SecretMemory;
  /** bcrypt compares running now (#compare), by hash and digest. */
  readonly #comparing = new Map<string, Promise<boolean>>();

  constructor(
    dataSource: DataSource,
    repos: {
      credentials: CredentialsRepository;
      agents: Pick<AgentsRepository, 'findInOrg' | 'lockInOrg' | 'statusById'>;
      orgs: Pick<OrgsRepository, 'limitsOf'>;
    },
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

  async #hashed(agent: Pick<Agent, 'id' | 'orgId'>, id: string, secret: string, expiresAt: Date | null, name: string | null = null): Promise<Credential> {
    return {
      ...blankCredential(agent, id, 'secret', name, expiresAt),
      secretHash: await bcrypt.hash(secretDigest(secret), this.#bcryptCost),
    };
  }

  /** A key credential, not yet stored: a generated pair (its private half returned once) or the agent's public key. */
  async #keyed(agent: Pick<Agent, 'id' | 'orgId'>, input: CreateCredentialInput, expiresAt: Date | null): Promise<CreatedCredential> {
    const base = blankCredential(agent, randomUUID(), 'private_key_jwt', input.name ?? null, expiresAt);
    if (input.publicJwk !== undefined) {
      const { publicJwk, alg } = await acceptPublicJwk(input.publicJwk, input.alg);
      return { credential: { ...base, publicJwk, kid: publicJwk.kid, alg, generated: false } };
    }
    const pair = await generateKeyPairFor(input.alg ?? 'ES256');
    return {
      credential: { ...base, publicJwk: pair.publicJwk, kid: pair.kid, alg: pair.alg, generated: true },
      privateKey: { pem: pair.privateKeyPem, jwk: pair.privateJwk },
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

  async create(orgId: string, agentId: string, input: CreateCredentialInput): Promise<CreatedCredential> {
    const type = input.type ?? 'secret';
    if (type === 'secret') {
      for (const field of ['alg', 'publicJwk'] as const) {
        if (input[field] !== undefined)
          throw new ValidationFailed(`${field} is for key credentials`, [{ field: `/${field}`, message: 'is only allowed with "type": "private_key_jwt"' }]);
      }
    }
    const expiresAt = input.expiresAt === undefined ? null : new Date(input.expiresAt);
    if (expiresAt && expiresAt.getTime() <= Date.now()) {
      throw new ValidationFailed('expiresAt must be in the future', [{ field: '/expiresAt', message: 'must be in the future' }]);
    }
    const agent = await this.#changeableAgent(orgId, agentId);
    // Checked once before bcrypt or key generation, so that a refused request costs neither ...
    assertBelowLimit(await this.#orgs.limitsOf(orgId), 'maxActiveCredentialsPerAgent', await this.#repo.countActive(orgId, agentId));
    if (input.name !== undefined && (await this.#repo.nameTaken(agentId, input.name))) throw nameConflict(input.name);
    const created: CreatedCredential =
      type === 'secret' ? await this.#mintNamed(agent, expiresAt, input.name ?? null) : await this.#keyed(agent, input, expiresAt);
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
      if (input.name !== undefined && (await this.#repo.nameTaken(agentId, input.name, manager))) throw nameConflict(input.name);
      if (created.credential.kid && (await this.#repo.activeWithKid(agentId, created.credential.kid, manager))) {
        throw new Conflict('conflict', `the agent already has an active credential with this key (kid ${created.credential.kid})`);
      }
      await this.#repo.insert(created.credential, manager);
    });
    return created;
  }

  async #mintNamed(agent: Pick<Agent, 'id' | 'orgId'>, expiresAt: Date | null, name: string | null): Promise<CreatedCredential> {
    const id = randomUUID();
    const secret = generateSecret(id);
    return { secret, credential: await this.#hashed(agent, id, secret, expiresAt, name) };
  }

  /** One credential of an agent of the org. */
  async get(orgId: string, agentId: string, credentialId: string): Promise<Credential> {
    if (!(await this.#agents.findInOrg(orgId, agentId))) throw new NotFound(`agent ${agentId} not found`);
    return this.#existing(orgId, agentId, credentialId);
  }

  /**
   * The public keys of an agent's usable key credentials (GET /agents/{id}/jwks, no
   * authentication: the agent id is all a third party knows). None for an agent that is not
   * active: its signatures vouch for nothing any more. Undefined for an unknown agent.
   */
  async publicJwks(agentId: string): Promise<{ keys: PublicJwk[] } | undefined> {
    const agent = await this.#agents.statusById(agentId);
    if (!agent) return undefined;
    if (agent.status !== 'active') return { keys: [] };
    const now = Date.now();
    const keys: PublicJwk[] = [];
    for (const c of await this.#repo.usablePublicKeys(agentId)) {
      keys.push(c.publicJwk!);
      if (c.previousPublicJwk && c.previousExpiresAt && c.previousExpiresAt.getTime() > now) keys.push(c.previousPublicJwk);
    }
    return { keys };
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

  /**
   * A new secret or key under the same credential id; the old one keeps working for the grace
   * period. A generated key pair is replaced by a new generated pair (its private half shown
   * once); an agent's own key by the `publicJwk` it sends.
   */
  async rotate(orgId: string, agentId: string, credentialId: string, input: RotateCredentialInput): Promise<CreatedCredential> {
    const agent = await this.#changeableAgent(orgId, agentId);
    const current = await this.#existing(orgId, agentId, credentialId);
    if (current.status === 'revoked') throw new Conflict('credential_revoked', `credential ${credentialId} is revoked and cannot be rotated`);
    if (current.expiresAt && current.expiresAt.getTime() <= Date.now()) {
      throw new Conflict('credential_expired', `credential ${credentialId} has expired; create a new credential instead`);
    }
    const grace = input.gracePeriodSeconds ?? 0;
    const now = new Date();
    const previousExpiresAt = grace > 0 ? new Date(now.getTime() + grace * 1000) : null;
    if (current.type === 'secret') {
      if (input.publicJwk !== undefined)
        throw new ValidationFailed('publicJwk is for key credentials', [{ field: '/publicJwk', message: 'this credential is a secret' }]);
      const { secret, credential: fresh } = await this.mint(agent, current.expiresAt, credentialId);
      const changes: Partial<Credential> = {
        secretHash: fresh.secretHash,
        previousSecretHash: grace > 0 ? current.secretHash : null,
        previousExpiresAt,
        rotatedAt: now,
      };
      await this.#repo.update(orgId, credentialId, changes);
      this.memory.forgetCredential(credentialId);
      return { secret, credential: { ...current, ...changes } };
    }
    let next: { publicJwk: PublicJwk; alg: string; privateKey?: CreatedCredential['privateKey'] };
    if (current.generated) {
      if (input.publicJwk !== undefined) {
        throw new ValidationFailed('this key pair was generated by the server; a rotation generates the next one', [
          { field: '/publicJwk', message: 'must not be given for a generated key pair' },
        ]);
      }
      const pair = await generateKeyPairFor(current.alg as SigningAlg);
      next = { publicJwk: pair.publicJwk, alg: pair.alg, privateKey: { pem: pair.privateKeyPem, jwk: pair.privateJwk } };
    } else {
      if (input.publicJwk === undefined) {
        throw new ValidationFailed('publicJwk is required: the new public key of this agent-supplied key', [{ field: '/publicJwk', message: 'is required' }]);
      }
      next = await acceptPublicJwk(input.publicJwk, undefined);
    }
    if (next.publicJwk.kid === current.kid) {
      throw new ValidationFailed('the new key is the current key', [{ field: '/publicJwk', message: 'must be a different key' }]);
    }
    const changes: Partial<Credential> = {
      publicJwk: next.publicJwk,
      kid: next.publicJwk.kid,
      alg: next.alg,
      previousPublicJwk: grace > 0 ? current.publicJwk : null,
      previousKid: grace > 0 ? current.kid : null,
      previousExpiresAt,
      rotatedAt: now,
    };
    await this.#repo.update(orgId, credentialId, changes);
    return { credential: { ...current, ...changes }, ...(next.privateKey ? { privateKey: next.privateKey } : {}) };
  }

  /** Revokes a credential; revoking one that is already revoked changes nothing (and answers false). */
  async revoke(orgId: string, agentId: string, credentialId: string): Promise<boolean> {
    if (!(await this.#agents.findInOrg(orgId, agentId))) throw new NotFound(`agent ${agentId} not found`);
    const credential = await this.#existing(orgId, agentId, credentialId);
    this.memory.forgetCredential(credentialId);
    if (credential.status === 'revoked') return false;
    await this.#repo.update(orgId, credentialId, {
      status: 'revoked',
      revokedAt: new Date(),
      previousSecretHash: null,
      previousPublicJwk: null,
      previousKid: null,
      previousExpiresAt: null,
    });
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
    // A key credential's id in a secret names no secret.
    if (!credential || credential.secretHash === null) return { ok: false, reason: 'unknown_credential' };
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
    // The memory keeps the row's own id string (equal to the one parsed from the secret): one
    // copy per credential rather than two, with 10,000 agents in memory.
    if (remembered !== undefined && hashes.includes(remembered)) {
      if (this.memory.refreshDue(digest)) this.#refresh(digest, credential.id, remembered);
      return { ok: true, credentialId };
    }

    for (const hash of hashes) {
      if (await this.#compare(digest, hash)) {
        this.memory.remember(digest, credential.id, hash);
        return { ok: true, credentialId };
      }
    }
    return { ok: false, reason: 'bad_secret' };
  }

  /**
   * bcrypt, once for all the checks of one secret against one hash that are in flight together:
   * a burst of requests with a secret not (or no longer) remembered costs one compare, not one each.
   */
  #compare(digest: string, hash: string): Promise<boolean> {
    const key = `${hash} ${digest}`;
    let running = this.#comparing.get(key);
    if (!running) {
      running = bcrypt.compare(digest, hash).finally(() => this.#comparing.delete(key));
      this.#comparing.set(key, running);
    }
    return running;
  }

  /** Proves a remembered secret again before its entry runs out (SecretMemory.refreshDue); the request that noticed has already been answered. */
  #refresh(digest: string, credentialId: string, hash: string): void {
    if (this.#comparing.has(`${hash} ${digest}`)) return;
    this.#compare(digest, hash).then(
      (ok) => (ok ? this.memory.remember(digest, credentialId, hash) : this.memory.forgetCredential(credentialId)),
      // bcrypt failing (it does not, for a hash it accepted before) leaves the entry to run out.
      () => {},
    );
  }

  async revokeAllOfAgent(orgId: string, agentId: string, manager?: EntityManager): Promise<string[]> {
    const ids = await this.#repo.revokeAllOfAgent(orgId, agentId, new Date(), manager);
    for (const id of ids) this.memory.forgetCredential(id);
    return ids;
  }
}

function blankCredential(agent: Pick<Agent, 'id' | 'orgId'>, id: string, type: CredentialType, name: string | null, expiresAt: Date | null): Credential {
  return {
    id,
    agentId: agent.id,
    orgId: agent.orgId,
    type,
    name,
    secretHash: null,
    previousSecretHash: null,
    previousExpiresAt: null,
    kid: null,
    alg: null,
    publicJwk: null,
    generated: null,
    previousKid: null,
    previousPublicJwk: null,
    status: 'active',
    createdAt: new Date(),
    expiresAt,
    rotatedAt: null,
    revokedAt: null,
  };
}

function nameConflict(name: string): Conflict {
  return new Conflict('conflict', `the agent already has a credential named "${name}"`);
}

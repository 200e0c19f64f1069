import { randomUUID } from 'node:crypto';
import type { Config } from '../../config/index.ts';
import type { Logger } from '../lib/logger.ts';
import type { Org } from '../orgs/org.entity.ts';
import type { OrgsRepository } from '../orgs/orgs.repository.ts';
import type { AgentsRepository } from '../agents/agents.repository.ts';
import { AgentsService } from '../agents/agents.service.ts';
import type { CredentialsRepository } from '../credentials/credentials.repository.ts';
import type { CredentialsService } from '../credentials/credentials.service.ts';
import { credentialIdOf, secretDigest } from '../credentials/secrets.ts';
import { ALL_MANAGEMENT_SCOPES, WEBHOOK_SCOPES } from '../policies/scopes.ts';
import bcrypt from 'bcrypt';

export const ROOT_ORG_NAME = 'root';

export interface BootstrapResult {
  rootOrg: Org;
  /** Set only when this start generated an operator: its secret is shown once. */
  generatedAdmin?: { clientId: string; clientSecret: string };
}

/**
 * Ensures the root org and, when configured, the operator agent of BOOTSTRAP_ADMIN_CLIENT_ID
 * with every management scope. On an empty embedded database without that setting, generates
 * an operator so that a newcomer can start right away.
 */
export async function bootstrap(
  repositories: { orgs: OrgsRepository; agents: AgentsRepository; credentials: CredentialsRepository },
  config: Config,
  credentials: Pick<CredentialsService, 'mint' | 'fromSecret'>,
  embedded: boolean,
  logger: Logger,
): Promise<BootstrapResult> {
  const { orgs, agents, credentials: credentialRows } = repositories;
  const adminInput = {
    name: 'operator',
    description: 'Operator of the whole service (bootstrap)',
    // No audience: the scopes imply the management API's, which follows PUBLIC_URL.
    scopes: ALL_MANAGEMENT_SCOPES,
  };

  let rootOrg = await orgs.findRoot();
  const freshDatabase = !rootOrg;
  if (!rootOrg) {
    const candidate: Org = { id: randomUUID(), name: ROOT_ORG_NAME, isRoot: true, limits: {}, createdAt: new Date() };
    try {
      await orgs.insert(candidate);
      rootOrg = candidate;
    } catch (err) {
      // Another instance created it first.
      rootOrg = await orgs.findRoot();
      if (!rootOrg) throw err;
    }
  }

  // The operators made by an earlier release hold every management scope it had; they get the
  // ones added since (webhooks:read, webhooks:write), so that an operator keeps every scope.
  const earlier = ALL_MANAGEMENT_SCOPES.filter((scope) => !WEBHOOK_SCOPES.includes(scope));
  const upgraded = await agents.addScopesWhereHeld(rootOrg.id, earlier, WEBHOOK_SCOPES);
  if (upgraded.length) logger.info('operators given the management scopes added since they were created', { agents: upgraded });

  const { bootstrapAdminClientId: clientId, bootstrapAdminClientSecret: secret } = config;
  if (clientId && secret) {
    const existing = await agents.findInOrg(rootOrg.id, clientId);
    if (!existing) {
      await agents.insert(AgentsService.build(rootOrg.id, adminInput, clientId));
      logger.info('created the bootstrap operator agent', { clientId });
    } else if (existing.status !== 'active') {
      logger.warn('the bootstrap operator agent is not active; it was left as it is', { clientId, status: existing.status });
    } else if ((await agents.addScopesWhereHeld(rootOrg.id, [], WEBHOOK_SCOPES, clientId)).length) {
      logger.info('the bootstrap operator was given the webhook scopes', { clientId });
    }
    const credentialId = credentialIdOf(secret)!;
    const credential = await credentialRows.findInOrg(rootOrg.id, clientId, credentialId);
    if (!credential) {
      // A new BOOTSTRAP_ADMIN_CLIENT_SECRET replaces the old one: the environment holds the
      // bootstrap operator's one credential, so the secrets it held before stop working.
      const replaced = await credentialRows.revokeAllOfAgent(rootOrg.id, clientId, new Date());
      await credentialRows.insert(await credentials.fromSecret({ id: clientId, orgId: rootOrg.id }, secret));
      if (replaced.length)
        logger.warn("BOOTSTRAP_ADMIN_CLIENT_SECRET changed: the operator's previous credentials were revoked", { clientId, revoked: replaced });
    } else if (credential.status === 'active' && (credential.secretHash === null || !(await bcrypt.compare(secretDigest(secret), credential.secretHash)))) {
      // The operator changed BOOTSTRAP_ADMIN_CLIENT_SECRET: the environment wins.
      const replaced = await credentials.fromSecret({ id: clientId, orgId: rootOrg.id }, secret);
      await credentialRows.update(rootOrg.id, credentialId, { secretHash: replaced.secretHash, rotatedAt: new Date() });
    }
    return { rootOrg };
  }

  if (embedded && freshDatabase) {
    const admin = AgentsService.build(rootOrg.id, adminInput);
    const { credential, secret: generated } = await credentials.mint(admin, null);
    await agents.insert(admin);
    await credentialRows.insert(credential);
    return { rootOrg, generatedAdmin: { clientId: admin.id, clientSecret: generated } };
  }
  return { rootOrg };
}

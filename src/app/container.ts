import type { Config } from '../../config/index.ts';
import type { Logger } from '../lib/logger.ts';
import type { Database } from '../db/database.ts';
import { NotifyConnection } from '../db/notify.ts';
import { Coherence } from '../coherence/coherence.ts';
import { StateCache } from '../coherence/state-cache.ts';
import { settledBy, type SettleStep } from '../coherence/settled.ts';
import { AgentsRepository } from '../agents/agents.repository.ts';
import { AgentsService } from '../agents/agents.service.ts';
import { FederatedIdentitiesRepository } from '../agents/federated-identities.repository.ts';
import { CredentialsRepository } from '../credentials/credentials.repository.ts';
import { CredentialsService } from '../credentials/credentials.service.ts';
import { SecretMemory } from '../credentials/secret-memory.ts';
import { OrgsRepository } from '../orgs/orgs.repository.ts';
import { OrgsService } from '../orgs/orgs.service.ts';
import { KeysRepository } from '../keys/keys.repository.ts';
import { KeysService } from '../keys/keys.service.ts';
import { KeyRing } from '../keys/key-ring.ts';
import { KeyRotationScheduler } from '../keys/key-rotation.scheduler.ts';
import { resolveMasterKey } from '../keys/master-key.ts';
import { AuditRepository } from '../audit/audit.repository.ts';
import { AuditWriter } from '../audit/audit.writer.ts';
import { AuditService } from '../audit/audit.service.ts';
import { AuditMaintenance } from '../audit/retention.ts';
import { CheckpointsRepository } from '../audit/checkpoints.repository.ts';
import { CheckpointsService } from '../audit/checkpoints.service.ts';
import { AuditCheckpointer } from '../audit/checkpointer.ts';
import { schedulerEvent } from '../audit/events.ts';
import { ClientStore } from '../oauth/client-store.ts';
import { RevocationsRepository } from '../oauth/revocations.repository.ts';
import { ReplaysRepository } from '../oauth/replays.repository.ts';
import { RevocationPurge } from '../oauth/revocation-purge.ts';
import { managementAudiences } from '../oauth/paths.ts';
import { buildProvider } from '../oauth/provider.ts';
import { ProviderHost } from '../oauth/provider-host.ts';
import { IssuerKeys } from '../oauth/federation/issuer-keys.ts';
import { AssertionVerifier } from '../oauth/federation/assertion.ts';
import { AccessTokenVerifier } from '../oauth/verifier.ts';
import { AuthFailuresRepository } from '../throttling/auth-failures.repository.ts';
import { AuthThrottle } from '../throttling/auth-throttle.ts';
import { TokenQuotas } from '../throttling/token-quota.ts';
import { TokenCountsRepository } from '../usage/token-counts.repository.ts';
import { TokenCounter } from '../usage/token-counter.ts';
import { UsageService } from '../usage/usage.service.ts';

import { Metrics } from '../metrics/metrics.ts';
import { WebhooksRepository } from '../webhooks/webhooks.repository.ts';
import { WebhooksService } from '../webhooks/webhooks.service.ts';
import { WebhookOutbox } from '../webhooks/outbox.ts';
import { DeliverySender } from '../webhooks/delivery-sender.ts';
import { DeliveryWorker } from '../webhooks/delivery-worker.ts';
import { CredentialExpiry } from '../credentials/credential-expiry.ts';

export interface ContainerOptions {
  /** The wall clock of rate limits, quotas and counters, in ms (tests drive it). */
  clock?: () => number;
}

// The object graph of one instance: every repository and service is built here, once, and
// handed to what uses it. Nothing here does I/O; idp.ts starts things in order, and calls
// buildOAuth once the signing keys are loaded.

export function buildContainer(config: Config, logger: Logger, database: Database, options: ContainerOptions = {}) {
  const clock = options.clock ?? Date.now;
  const ds = database.dataSource;
  const masterKey = resolveMasterKey(config);

  // One LISTEN connection for everything that hears the other instances; none on PGlite (one
  // session: nothing to LISTEN with), where the key ring polls and nothing is cached.
  const notify = new NotifyConnection(database.listenable ? database.url : undefined, logger);
  const coherence = new Coherence(ds, notify, logger);
  // What every /token and introspection reads, kept in memory and in step with the other instances.
  const stateCache = coherence.enabled ? new StateCache(coherence) : undefined;
  const settled: SettleStep = settledBy(coherence);

  const repositories = {
    orgs: new OrgsRepository(ds),
    agents: new AgentsRepository(ds),
    federatedIdentities: new FederatedIdentitiesRepository(ds),
    credentials: new CredentialsRepository(ds),
    keys: new KeysRepository(ds),
    audit: new AuditRepository(ds),
    revocations: new RevocationsRepository(ds),
    replays: new ReplaysRepository(ds),
    webhooks: new WebhooksRepository(ds),
    checkpoints: new CheckpointsRepository(ds),
  };

  const keyRing = new KeyRing(repositories.keys, masterKey, notify, logger);
  const keys = new KeysService(ds, repositories.keys, masterKey, config, logger, keyRing);
  const credentials = new CredentialsService(ds, repositories, new SecretMemory(config.secretMemorySeconds, undefined, clock), {
    bcryptCost: config.bcryptCost,
  });
  const agents = new AgentsService(
    ds,
    repositories.agents,
    credentials,
    repositories.orgs,
    managementAudiences(config.publicUrl),
    repositories.federatedIdentities,
    {
      allowInsecure: config.federationAllowInsecureIssuers,
    },
  );
  const orgs = new OrgsService(ds, repositories, credentials);

  // The webhook outbox rides on the audit writer: deliveries are stored in the transaction of
  // the event that causes them (only for events a webhook can get: never token.issued).
  const outbox = new WebhookOutbox(repositories.webhooks);
  const auditWriter = new AuditWriter(repositories.audit, logger, { follower: outbox });
  const audit = new AuditService(repositories.audit, { retentionDays: config.auditRetentionDays });
  const checkpoints = new CheckpointsService(repositories.checkpoints, () => audit.retentionStart());
  // In the background, on what the audit writer committed: /token does not wait for it.
  const checkpointer = new AuditCheckpointer(ds, repositories.checkpoints, () => keyRing.current, logger, {
    everyMs: config.auditCheckpointSeconds * 1000,
    clock,
  });
  const auditMaintenance = new AuditMaintenance(ds, repositories.audit, auditWriter, logger, { retentionDays: config.auditRetentionDays });

  // Counts what the audit writer stores; the throttles call metrics.rateLimited().
  const metrics = new Metrics({ auditWriter, keyRing, coherence });

  const clients = new ClientStore(ds, stateCache);
  const throttle = new AuthThrottle(
    {
      repo: new AuthFailuresRepository(ds),
      coherence,
      auditWriter,
      orgOf: async (clientId) => (await clients.findForDenial(clientId))?.orgId ?? null,
      logger,
      onRefusal: (endpoint) => metrics.rateLimited(endpoint),
    },
    {
      pairLimit: config.authFailureLimit,
      ipLimit: config.authFailureIpLimit,
      windowSeconds: config.authFailureWindowSeconds,
      now: clock,
    },
  );
  const tokenCounts = new TokenCountsRepository(ds);
  const counter = new TokenCounter(tokenCounts, logger, clock);
  const quotas = new TokenQuotas(counter, clock, () => metrics.rateLimited('token'));
  const usage = new UsageService(ds, tokenCounts, counter, clock);
  const revocationPurge = new RevocationPurge(repositories.revocations, logger, repositories.replays);
  const scheduler = new KeyRotationScheduler(keys, logger, {
    async onResult(result) {
      if (!result.rotated && !result.removed.length && !result.createdNext) return;
      // The event belongs to no org (the operators of the root org see it).
      await auditWriter.write(
        schedulerEvent(
          'key-rotation',
          'key.rotated',
          { type: 'key', id: result.rotated?.active ?? null },
          {
            ...result.rotated,
            removed: result.removed,
            createdNext: result.createdNext ?? null,
          },
        ),
      );
    },
  });

  const targetPolicy = { allowInsecureUrls: config.webhookAllowInsecureUrls, allowPrivateTargets: config.webhookAllowPrivateTargets };
  const deliveries = new DeliveryWorker(
    { repo: repositories.webhooks, sender: new DeliverySender(targetPolicy), masterKey, auditWriter, logger },
    { retryBaseSeconds: config.webhookRetryBaseSeconds, disableAfterHours: config.webhookDisableAfterHours, clock },
  );
  outbox.onCommitted(() => deliveries.wake());
  const webhooks = new WebhooksService(repositories.webhooks, { ...targetPolicy, masterKey, clock, onQueued: () => deliveries.wake() });
  const credentialExpiry = new CredentialExpiry(ds, auditWriter, logger, { warningDays: config.webhookExpiryWarningDays, clock });

  return {
    config,
    clock,
    logger,
    database,
    notify,
    coherence,
    settled,
    repositories,
    keyRing,
    keys,
    credentials,
    agents,
    orgs,
    auditWriter,
    audit,
    auditMaintenance,
    clients,
    throttle,
    tokenCounts,
    counter,
    quotas,
    usage,
    revocationPurge,
    scheduler,
    metrics,
    webhooks,
    deliveries,
    credentialExpiry,
    checkpoints,
    checkpointer,
  };
}

export type Container = ReturnType<typeof buildContainer>;

/**
 * The OAuth engine, once the key ring holds the key set: the current Provider and the token
 * verifier, both following the key set as it changes (oidc-provider fixes its keys at
 * construction, so a change builds a new Provider and swaps it in).
 */
export function buildOAuth(c: Container): { providerHost: ProviderHost; verifier: AccessTokenVerifier } {
  const { config, keyRing, clients, credentials, logger, auditWriter, throttle, quotas, counter } = c;
  const replays = c.repositories.replays;
  // Kept across Provider rebuilds: the external issuers' keys do not change with ours.
  const issuerKeys = new IssuerKeys(
    { allowInsecure: config.federationAllowInsecureIssuers },
    { fetchTimeoutMs: config.federationFetchTimeoutMs, clock: c.clock },
  );
  const federation = new AssertionVerifier(issuerKeys, replays, config.publicUrl);
  const verifier = new AccessTokenVerifier(config.publicUrl, keyRing.current, clients);
  const provider = () =>
    buildProvider({ config, keyset: keyRing.current, clients, credentials, logger, auditWriter, throttle, quotas, counter, replays, verifier, federation });
  const providerHost = new ProviderHost(provider(), keyRing.current);
  keyRing.onChange((next) => {
    providerHost.swap(provider(), next);
    verifier.useKeyset(next);
    logger.info('signing keys changed', { active: next.activeKid, published: next.privateJwks.length });
  });
  return { providerHost, verifier };
}

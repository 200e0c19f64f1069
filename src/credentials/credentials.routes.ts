import type Router from '@koa/router';
import type { AuditWriter } from '../audit/audit.writer.ts';
import { managementEvent } from '../audit/events.ts';
import type { SettleStep } from '../coherence/settled.ts';
import type { ManagementState } from '../http/state.ts';
import { body, query, validate } from '../http/validate.ts';
import { requireScope } from '../policies/scopes.ts';
import type { CredentialsService } from './credentials.service.ts';
import { presentCredential } from './credentials.presenter.ts';
import type { Credential } from './credential.entity.ts';
import { NotFound } from '../http/errors.ts';
import { isUuid } from '../lib/ids.ts';
import { JWKS_MAX_AGE_SECONDS } from '../keys/keys.service.ts';

const CreateCredential = body('CreateCredentialRequest', { optional: true });
const RotateCredential = body('RotateCredentialRequest', { optional: true });
const CredentialList = query('CredentialListQuery');

export interface CredentialsRoutesDeps {
  credentials: CredentialsService;
  auditWriter: Pick<AuditWriter, 'write'>;
  settled: SettleStep;
}

export function credentialsRoutes(router: Router<ManagementState>, { credentials, auditWriter, settled }: CredentialsRoutesDeps): void {
  const target = (id: string) => ({ type: 'credential', id });

  router.post('/agents/:agentId/credentials', requireScope('agents:write'), validate(CreateCredential), settled, async (ctx) => {
    const { agentId } = ctx.params;
    const { credential, secret, privateKey } = await credentials.create(ctx.state.actor.orgId, agentId, CreateCredential.of(ctx) ?? {});
    await auditWriter.write(managementEvent(ctx, 'credential.created', target(credential.id), credentialDetails(credential), { agentId }));
    ctx.status = 201;
    ctx.body = presentCredential(credential, { secret, privateKey });
  });

  router.get('/agents/:agentId/credentials/:credentialId', requireScope('agents:read'), async (ctx) => {
    const { agentId, credentialId } = ctx.params;
    ctx.body = presentCredential(await credentials.get(ctx.state.actor.orgId, agentId, credentialId));
  });

  router.get('/agents/:agentId/credentials', requireScope('agents:read'), validate(CredentialList), async (ctx) => {
    const { page, limit, status } = CredentialList.of(ctx);
    const { rows, total } = await credentials.list(ctx.state.actor.orgId, ctx.params.agentId, status, { page, limit });
    ctx.body = { data: rows.map((c) => presentCredential(c)), total, page, limit };
  });

  router.post('/agents/:agentId/credentials/:credentialId/rotate', requireScope('agents:write'), validate(RotateCredential), settled, async (ctx) => {
    const { agentId, credentialId } = ctx.params;
    const input = RotateCredential.of(ctx) ?? {};
    const { credential, secret, privateKey } = await credentials.rotate(ctx.state.actor.orgId, agentId, credentialId, input);
    const details = { gracePeriodSeconds: input.gracePeriodSeconds ?? 0, ...(credential.kid ? { kid: credential.kid } : {}) };
    await auditWriter.write(managementEvent(ctx, 'credential.rotated', target(credentialId), details, { agentId }));
    ctx.body = presentCredential(credential, { secret, privateKey });
  });

  router.delete('/agents/:agentId/credentials/:credentialId', requireScope('agents:write'), settled, async (ctx) => {
    const { agentId, credentialId } = ctx.params;
    const changed = await credentials.revoke(ctx.state.actor.orgId, agentId, credentialId);
    await auditWriter.write(managementEvent(ctx, 'credential.revoked', target(credentialId), { alreadyRevoked: !changed }, { agentId }));
    ctx.status = 204;
  });
}

/** What the audit log says of a new credential: its kind and key id, never a secret or a key. */
function credentialDetails(credential: Credential) {
  return {
    type: credential.type,
    name: credential.name,
    expiresAt: credential.expiresAt?.toISOString() ?? null,
    ...(credential.kid ? { kid: credential.kid, alg: credential.alg, generated: credential.generated } : {}),
  };
}

/** GET /agents/{agentId}/jwks, no authentication: the public keys of the agent's usable key credentials (RFC 7517). */
export function agentJwksRoutes(router: Router, { credentials }: { credentials: Pick<CredentialsService, 'publicJwks'> }): void {
  router.get('/agents/:agentId/jwks', async (ctx) => {
    const agentId = ctx.params.agentId;
    const jwks = isUuid(agentId) ? await credentials.publicJwks(agentId) : undefined;
    if (!jwks) throw new NotFound(`agent ${agentId.slice(0, 64)} not found`);
    // As the IdP's own JWKS: cached briefly, so that a revoked key leaves caches soon.
    ctx.set('Cache-Control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
    ctx.type = 'application/jwk-set+json';
    ctx.body = jwks;
  });
}

import type Router from '@koa/router';
import type { AuditWriter } from '../audit/audit.writer.ts';
import { managementEvent } from '../audit/events.ts';
import type { SettleStep } from '../coherence/settled.ts';
import type { ManagementState } from '../http/state.ts';
import { body, query, validate } from '../http/validate.ts';
import { requireScope } from '../policies/scopes.ts';
import type { CredentialsService } from './credentials.service.ts';
import { presentCredential } from './credentials.presenter.ts';

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
    const { credential, secret } = await credentials.create(ctx.state.actor.orgId, agentId, CreateCredential.of(ctx));
    await auditWriter.write(
      managementEvent(ctx, 'credential.created', target(credential.id), { expiresAt: credential.expiresAt?.toISOString() ?? null }, { agentId }),
    );
    ctx.status = 201;
    ctx.body = presentCredential(credential, { secret });
  });

  router.get('/agents/:agentId/credentials', requireScope('agents:read'), validate(CredentialList), async (ctx) => {
    const { page, limit, status } = CredentialList.of(ctx);
    const { rows, total } = await credentials.list(ctx.state.actor.orgId, ctx.params.agentId, status, { page, limit });
    ctx.body = { data: rows.map((c) => presentCredential(c)), total, page, limit };
  });

  router.post('/agents/:agentId/credentials/:credentialId/rotate', requireScope('agents:write'), validate(RotateCredential), settled, async (ctx) => {
    const { agentId, credentialId } = ctx.params;
    const input = RotateCredential.of(ctx);
    const { credential, secret } = await credentials.rotate(ctx.state.actor.orgId, agentId, credentialId, input);
    await auditWriter.write(
      managementEvent(ctx, 'credential.rotated', target(credentialId), { gracePeriodSeconds: input.gracePeriodSeconds ?? 0 }, { agentId }),
    );
    ctx.body = presentCredential(credential, { secret });
  });

  router.delete('/agents/:agentId/credentials/:credentialId', requireScope('agents:write'), settled, async (ctx) => {
    const { agentId, credentialId } = ctx.params;
    const changed = await credentials.revoke(ctx.state.actor.orgId, agentId, credentialId);
    await auditWriter.write(managementEvent(ctx, 'credential.revoked', target(credentialId), { alreadyRevoked: !changed }, { agentId }));
    ctx.status = 204;
  });
}

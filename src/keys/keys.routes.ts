import type Router from '@koa/router';
import type { JWK } from 'jose';
import type { SigningKey } from './signing-key.entity.ts';
import type { AuditWriter } from '../audit/audit.writer.ts';
import { managementEvent } from '../audit/events.ts';
import type { SettleStep } from '../coherence/settled.ts';
import { NotFound } from '../http/errors.ts';
import type { ManagementState } from '../http/state.ts';
import { body, validate } from '../http/validate.ts';
import { requireScope } from '../policies/scopes.ts';
import type { KeysService } from './keys.service.ts';
import { presentKey, presentPublicKey } from './keys.presenter.ts';

const CreateKey = body('CreateKeyRequest', { optional: true });
const NoInput = body('EmptyRequest', { optional: true });

/** A kid as this service makes them (a JWK thumbprint); anything else names no key. */
export const KID = /^[A-Za-z0-9_-]{1,128}$/;

export interface KeysRoutesDeps {
  keys: KeysService;
  auditWriter: Pick<AuditWriter, 'write'>;
  settled: SettleStep;
}

// Operators only: keys are the whole service's.
export function keysRoutes(router: Router<ManagementState>, { keys, auditWriter, settled }: KeysRoutesDeps): void {
  const read = requireScope('keys:read', { operator: true });
  const write = requireScope('keys:write', { operator: true });
  const target = (kid: string) => ({ type: 'key', id: kid });

  router.get('/keys', read, async (ctx) => {
    ctx.body = { data: (await keys.list()).map(presentKey) };
  });

  router.post('/keys', write, validate(CreateKey), settled, async (ctx) => {
    const key = await keys.create(CreateKey.of(ctx).alg);
    await auditWriter.write(managementEvent(ctx, 'key.created', target(key.kid), { alg: key.alg, status: key.status }));
    ctx.status = 201;
    ctx.body = presentKey(key);
  });

  router.post('/keys/rotate', write, validate(NoInput), settled, async (ctx) => {
    const { retired, active, next } = await keys.rotate();
    await auditWriter.write(managementEvent(ctx, 'key.rotated', target(active.kid), { retired: retired?.kid ?? null, active: active.kid, next: next.kid }));
    ctx.body = { active: presentKey(active), next: presentKey(next) };
  });

  router.get('/keys/active', read, async (ctx) => {
    ctx.body = presentKey(await keys.active());
  });

  router.post('/keys/:kid/revoke', write, validate(NoInput), settled, async (ctx) => {
    const key = await keys.revoke(ctx.params.kid);
    await auditWriter.write(managementEvent(ctx, 'key.revoked', target(key.kid), { alg: key.alg }));
    ctx.body = presentKey(key);
  });

  router.delete('/keys/:kid', write, settled, async (ctx) => {
    await keys.remove(ctx.params.kid);
    await auditWriter.write(managementEvent(ctx, 'key.deleted', target(ctx.params.kid)));
    ctx.status = 204;
  });
}

/**
 * GET /api/v1/keys/public/{kid}, without a token: the public half of a published key, for
 * anyone; and of a removed key that signed audit checkpoints, which must stay verifiable
 * (design/events.md).
 */
export function publicKeyRoutes(
  router: Router,
  {
    keys,
    checkpointSigner,
  }: Pick<KeysRoutesDeps, 'keys'> & { checkpointSigner: (kid: string) => Promise<{ kid: string; alg: string; publicJwk: JWK } | null> },
): void {
  router.get('/keys/public/:kid', async (ctx) => {
    if (!KID.test(ctx.params.kid)) throw new NotFound('key not found');
    const { kid } = ctx.params;
    const key = await keys.find(kid);
    ctx.set('Cache-Control', 'public, max-age=300');
    if (key && key.status !== 'revoked') {
      ctx.body = presentPublicKey(key);
      return;
    }
    const signer = key ? null : await checkpointSigner(kid);
    if (!signer) throw new NotFound(`key ${kid} not found`);
    ctx.body = presentPublicKey({ kid: signer.kid, alg: signer.alg as SigningKey['alg'], publicJwk: signer.publicJwk });
  });
}

import { Readable } from 'node:stream';
import type Router from '@koa/router';
import { requireScope } from '../policies/scopes.ts';
import { query, validate } from '../http/validate.ts';
import type { ManagementState } from '../http/state.ts';
import { NotFound } from '../http/errors.ts';
import type { AuditEvent } from './audit-event.ts';
import type { AuditService } from './audit.service.ts';
import { presentAuditEvent } from './audit.presenter.ts';
import { isUuid } from '../lib/ids.ts';
import type { CheckpointsService } from './checkpoints.service.ts';

const EVENTS_PER_CHUNK = 500;

/** NDJSON, a few hundred events per chunk written to the socket. */
async function* ndjson(first: IteratorResult<AuditEvent>, rest: AsyncGenerator<AuditEvent>): AsyncGenerator<string> {
  if (first.done) return;
  let chunk = JSON.stringify(presentAuditEvent(first.value)) + '\n';
  let count = 1;
  for await (const event of rest) {
    chunk += JSON.stringify(presentAuditEvent(event)) + '\n';
    if (++count % EVENTS_PER_CHUNK === 0) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

const AuditList = query('AuditQuery');
const AuditExport = query('AuditExportQuery');
const CheckpointList = query('AuditCheckpointsQuery');
const AuditVerify = query('AuditVerifyQuery');

export function auditRoutes(router: Router<ManagementState>, { audit, checkpoints }: { audit: AuditService; checkpoints: CheckpointsService }): void {
  router.get('/audit', requireScope('audit:read'), validate(AuditList), async (ctx) => {
    const input = AuditList.of(ctx);
    const { rows, nextCursor } = await audit.page(ctx.state.actor, input);
    if (nextCursor) {
      // RFC 8288: the next page is the same query from the cursor on.
      const next = new URLSearchParams();
      for (const [key, value] of Object.entries(input)) {
        if (key !== 'cursor' && value !== undefined) next.set(key, String(value));
      }
      next.set('cursor', nextCursor);
      ctx.set('Link', `<${ctx.path}?${next}>; rel="next"`);
    }
    ctx.body = { data: rows.map(presentAuditEvent), nextCursor };
  });

  // Before /audit/:eventId, which would otherwise take "export" for an id.
  router.get('/audit/export', requireScope('audit:read'), validate(AuditExport), async (ctx) => {
    const events = audit.export(ctx.state.actor, AuditExport.of(ctx));
    // The first chunk is read before answering, so that a database outage is still a 503
    // problem rather than a cut stream.
    const first = await events.next();
    ctx.type = 'application/x-ndjson';
    ctx.set('Content-Disposition', 'attachment; filename="audit-events.ndjson"');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = Readable.from(ndjson(first, events), { objectMode: false });
  });

  // Signed checkpoints of the caller's chain (operators: and the service's), oldest first.
  router.get('/audit/checkpoints', requireScope('audit:read'), validate(CheckpointList), async (ctx) => {
    const { rows, nextCursor } = await checkpoints.page(ctx.state.actor, CheckpointList.of(ctx));
    ctx.body = { data: rows, nextCursor, retainedFrom: checkpoints.retainedFrom().toISOString() };
  });

  router.get('/audit/verify', requireScope('audit:read'), validate(AuditVerify), async (ctx) => {
    const result = await checkpoints.verify(ctx.state.actor, AuditVerify.of(ctx));
    ctx.body = result.verified
      ? { verified: true, events: result.events, checkpoints: result.checkpoints, purged: result.purged }
      : { verified: false, events: result.events, checkpoints: result.checkpoints, problems: result.problems, purged: result.purged };
  });

  router.get('/audit/:eventId', requireScope('audit:read'), async (ctx) => {
    const { eventId } = ctx.params;
    if (!isUuid(eventId)) throw new NotFound(`audit event ${eventId.slice(0, 64)} not found`);
    ctx.body = presentAuditEvent(await audit.get(ctx.state.actor, eventId));
  });
}

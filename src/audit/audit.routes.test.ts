import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import { checkAgainstContract } from '../../test/helpers/api.ts';
import { problemHandler } from '../http/problem.ts';
import { requestContext } from '../http/request-context.ts';
import type { AuditEvent } from './audit-event.ts';
import { auditRoutes } from './audit.routes.ts';
import { CheckpointsService } from './checkpoints.service.ts';
import { CheckpointsRepository } from './checkpoints.repository.ts';
import { DAY, ORG_A, ORG_B, ROOT, newestFirst, quiet, seededAuditLog, type SeededAuditLog } from '../../test/helpers/audit-log.ts';

// The audit log's routes on a bare management router, over real HTTP, on a seeded log.

let log: SeededAuditLog;
let seededA: AuditEvent[];

beforeAll(async () => {
  log = await seededAuditLog();
  ({ seededA } = log);
});
afterAll(() => log?.close());

describe('the routes (on a bare management router)', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    // Stands in for the bearer check: the org and scopes come from test headers.
    const app = new Koa();
    const router = new Router({ prefix: '/api/v1' });
    router.use(problemHandler(quiet));
    router.use(async (ctx, next) => {
      const orgId = ctx.get('x-test-org');
      ctx.state.actor = { agentId: randomUUID(), orgId, isRoot: orgId === ROOT, scopes: new Set(ctx.get('x-test-scopes').split(' ')), jti: 'x' };
      await next();
    });
    auditRoutes(router, { audit: log.service, checkpoints: new CheckpointsService(new CheckpointsRepository(log.ds), () => log.service.retentionStart()) });
    app.use(requestContext(quiet));
    app.use(router.routes());
    server = createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  async function get(path: string, orgId = ORG_A, scopes = 'audit:read') {
    const res = await fetch(base + path, { headers: { 'x-test-org': orgId, 'x-test-scopes': scopes } });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    const body = /^application\/(problem\+)?json$/.test(type.split(';')[0]) && text ? JSON.parse(text) : text;
    if (!type.startsWith('application/x-ndjson')) checkAgainstContract('GET', path.split('?')[0], res.status, type, body);
    return { status: res.status, headers: res.headers, body, text };
  }

  it('page with nextCursor and an RFC 8288 Link to the next page', async () => {
    const expected = seededA.filter((e) => e.action === 'agent.created').sort(newestFirst);
    const seen: string[] = [];
    let path: string | undefined = '/api/v1/audit?action=agent.created&limit=25';
    while (path) {
      const res = await get(path);
      expect(res.status).toBe(200);
      seen.push(...res.body.data.map((e: { eventId: string }) => e.eventId));
      const link = res.headers.get('link');
      if (res.body.nextCursor) {
        expect(link).toBe(`</api/v1/audit?action=agent.created&limit=25&cursor=${res.body.nextCursor}>; rel="next"`);
        path = /^<([^>]+)>; rel="next"$/.exec(link!)![1];
      } else {
        expect(link).toBeNull();
        path = undefined;
      }
    }
    expect(seen).toEqual(expected.map((e) => e.eventId));
  });

  it('answer bad queries with a 400 problem naming the field', async () => {
    for (const [query, field] of [
      ['limit=500', 'query/limit'],
      ['limit=0', 'query/limit'],
      ['cursor=not%20base64!', 'query/cursor'],
      [`cursor=${Buffer.from('nope').toString('base64url')}`, 'query/cursor'],
      ['agentId=123', 'query/agentId'],
      ['action=DROP%20TABLE', 'query/action'],
      ['outcome=maybe', 'query/outcome'],
      ['from=yesterday', 'query/from'],
      [`from=${new Date(Date.now() - 100 * DAY).toISOString()}`, 'query/from'],
      ['unknown=1', 'query/unknown'],
    ]) {
      const res = await get(`/api/v1/audit?${query}`);
      expect({ query, status: res.status }).toEqual({ query, status: 400 });
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
  });

  it('get one event of the own org; 404 for another org’s and for what is not a UUID', async () => {
    const id = seededA[3].eventId;
    const mine = await get(`/api/v1/audit/${id}`);
    expect(mine.status).toBe(200);
    expect(mine.body.eventId).toBe(id);
    expect((await get(`/api/v1/audit/${id}`, ORG_B)).status).toBe(404);
    expect((await get('/api/v1/audit/not-a-uuid')).status).toBe(404);
  });

  it('need the audit:read scope', async () => {
    for (const path of ['/api/v1/audit', '/api/v1/audit/export', `/api/v1/audit/${seededA[0].eventId}`]) {
      expect((await get(path, ORG_A, 'agents:read')).status).toBe(403);
    }
  });

  it('export NDJSON, newest first, with the filters', async () => {
    const res = await get('/api/v1/audit/export?outcome=failure');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = res.text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((e) => e.eventId)).toEqual(
      seededA
        .filter((e) => e.outcome === 'failure')
        .sort(newestFirst)
        .map((e) => e.eventId),
    );
    for (const line of lines.slice(0, 3)) {
      expect(() => checkAgainstContract('GET', `/api/v1/audit/${line.eventId}`, 200, 'application/json', line)).not.toThrow();
    }
    const empty = await get(`/api/v1/audit/export?agentId=${randomUUID()}`);
    expect(empty.status).toBe(200);
    expect(empty.text).toBe('');
    expect((await get('/api/v1/audit/export?limit=5')).status).toBe(400);
  });
});

import Router from '@koa/router';
import type { ReadinessCheck } from './readiness.ts';

export const LIVENESS_PATH = '/healthz';
export const READINESS_PATH = '/readyz';

// Probes for orchestrators and load balancers: no token, outside /api/v1, never cached.
// /healthz says the process serves (a restart would not help otherwise); it asks nothing of the
// database, so that a database outage does not get every instance restarted at once.

export function healthRouter(readiness: Pick<ReadinessCheck, 'check'>): Router {
  const router = new Router();
  router.get(LIVENESS_PATH, (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get(READINESS_PATH, async (ctx) => {
    const answer = await readiness.check();
    ctx.set('Cache-Control', 'no-store');
    ctx.status = answer.status === 'ready' ? 200 : 503;
    ctx.body = answer;
  });
  return router;
}

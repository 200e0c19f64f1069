import autocannon from 'autocannon';
import type { Request, RequestParams, Result } from 'autocannon';
import { createPrivateKey, randomUUID, sign, type KeyObject } from 'node:crypto';
import { newHistogram, processCpuMs, processRssMb, record, type LoadJob, type LoadMessage, type LoadResult, type OneTimeJwt, type RssSample } from './lib.ts';

// The load generator: one job (sent by bench/run.ts over IPC), driven with autocannon from this
// process, which the harness pins to a core of its own. An unmeasured warm-up, then the
// measurement, around which the server's CPU time is read from /proc; its RSS is sampled
// during it. Latencies are recorded here from every response (any status), in fractions of a
// millisecond.

function send(message: LoadMessage): void {
  if (process.connected) process.send!(message);
}

// The harness went away (interrupted): stop at once.
process.on('disconnect', () => process.exit(0));

const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An ES256 JWT, signed synchronously (autocannon's setupRequest cannot wait): node:crypto, as jose would do it. */
function es256(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject): string {
  const input = `${part({ alg: 'ES256', ...header })}.${part(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

/** Makes the request's one-time JWT: a fresh jti and iat every time. */
function oneTimeJwtMaker(spec: OneTimeJwt): (req: RequestParams & Record<string, unknown>) => RequestParams & Record<string, unknown> {
  const key = createPrivateKey(spec.privateKeyPem);
  if (spec.kind === 'client_assertion') {
    return (req) => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = es256({ kid: spec.kid }, { iss: spec.clientId, sub: spec.clientId, aud: spec.audience, jti: randomUUID(), iat: now, exp: now + 60 }, key);
      const body = `${req.body}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=${jwt}`;
      return { ...req, body };
    };
  }
  if (spec.kind === 'jwt_bearer') {
    return (req) => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = es256(
        { kid: spec.kid, typ: 'JWT' },
        { iss: spec.issuer, sub: spec.subject, aud: spec.audience, jti: randomUUID(), iat: now, exp: now + 300 },
        key,
      );
      return { ...req, body: `${req.body}&assertion=${jwt}` };
    };
  }
  return (req) => {
    const proof = es256({ typ: 'dpop+jwt', jwk: spec.publicJwk }, { htm: 'POST', htu: spec.htu, jti: randomUUID(), iat: Math.floor(Date.now() / 1000) }, key);
    return { ...req, headers: { ...req.headers, dpop: proof } };
  };
}

function requestsOf(job: LoadJob): Request[] {
  const counters = new Map<string, number>();
  return job.requests.map((template) => {
    const request: Request = { method: template.method, path: template.path, headers: template.headers ?? {}, body: template.body };
    if (template.oneTimeJwt) request.setupRequest = oneTimeJwtMaker(template.oneTimeJwt);
    const pool = template.pool === undefined ? undefined : job.pools?.[template.pool];
    if (template.pool !== undefined) {
      if (!pool || pool.length === 0) throw new Error(`no pool ${template.pool}`);
      const name = template.pool;
      // Shared by every connection: each request takes the pool's next entry.
      request.setupRequest = (req) => {
        const n = counters.get(name) ?? 0;
        counters.set(name, n + 1);
        const entry = pool[n % pool.length];
        return { ...req, headers: { ...req.headers, ...entry.headers }, body: entry.body ?? req.body };
      };
    }
    return request;
  });
}

function run(job: LoadJob, requests: Request[], seconds: number, amount: number | undefined, onResponse?: (ms: number) => void) {
  return new Promise<{ result: Result; elapsedS: number }>((resolve, reject) => {
    const started = performance.now();
    const instance = autocannon(
      {
        url: job.url,
        connections: amount === undefined ? job.connections : Math.min(job.connections, amount),
        // With an amount, autocannon ignores the duration: we stop it ourselves.
        ...(amount === undefined ? { duration: seconds } : { amount }),
        timeout: job.timeoutSeconds ?? 30,
        requests,
      },
      (err, result) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve({ result, elapsedS: (performance.now() - started) / 1000 });
      },
    );
    const timer = amount === undefined ? undefined : setTimeout(() => instance.stop(), seconds * 1000);
    if (onResponse) instance.on('response', (_client, _status, _bytes, ms) => onResponse(ms));
  });
}

async function execute(job: LoadJob): Promise<LoadResult> {
  const requests = requestsOf(job);
  if (job.warmup > 0) await run(job, requests, job.warmup, undefined);

  const latency = newHistogram();
  // Per wall-clock second of the measurement: how many answers, and the slowest (a stall shows as a second with few and slow ones).
  const perSecond: number[] = [];
  const perSecondMaxMs: number[] = [];

  const rss: RssSample[] = [];
  const t0 = performance.now();
  const startedAtMs = Date.now();
  const sample = () => {
    const mb = processRssMb(job.serverPid);
    if (mb !== undefined) rss.push({ t: Math.round((performance.now() - t0) / 100) / 10, rssMb: Math.round(mb * 10) / 10 });
  };
  send({ type: 'measure-start' });
  const cpuBefore = processCpuMs(job.serverPid);
  const ownBefore = process.cpuUsage();
  sample();
  const sampler = setInterval(sample, (job.sampleEvery ?? 1) * 1000);
  const { result, elapsedS } = await run(job, requests, job.duration, job.amount, (ms) => {
    record(latency, ms);
    const second = Math.floor((performance.now() - t0) / 1000);
    perSecond[second] = (perSecond[second] ?? 0) + 1;
    if (ms > (perSecondMaxMs[second] ?? 0)) perSecondMaxMs[second] = ms;
  });
  clearInterval(sampler);
  const cpuAfter = processCpuMs(job.serverPid);
  const own = process.cpuUsage(ownBefore);
  sample();

  const statusCodes: Record<string, number> = {};
  for (const [code, { count: n }] of Object.entries(result.statusCodeStats)) statusCodes[code] = n;
  const total = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  return {
    durationS: elapsedS,
    requests: total,
    latency,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    serverCpuMs: cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore,
    rss,
    loadCpuMs: (own.user + own.system) / 1000,
    startedAtMs,
    // Whole seconds only; a second in which nothing was answered counts 0.
    perSecond: Array.from({ length: Math.floor(elapsedS) }, (_, i) => perSecond[i] ?? 0),
    perSecondMaxMs: Array.from({ length: Math.floor(elapsedS) }, (_, i) => Math.round((perSecondMaxMs[i] ?? 0) * 10) / 10),
  };
}

process.once('message', (job: LoadJob) => {
  execute(job)
    .then((result) => send({ type: 'result', result }))
    .catch((err: Error) => send({ type: 'error', message: err.stack ?? err.message }))
    .finally(() => {
      if (process.connected) process.disconnect();
    });
});

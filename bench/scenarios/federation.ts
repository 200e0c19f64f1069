import { accessToken, createAgent } from '../../test/factories.ts';
import { startJwtIssuer } from '../../test/helpers/jwt-issuer.ts';
import { BENCH_SCOPE, FORM, basic, type RequestTemplate } from '../lib.ts';
import { log } from '../common.ts';
import { AGENT_BODY, TOKEN_BODY, expect, http } from '../fixtures.ts';
import { measureAll } from '../measure.ts';
import { describe, noFailures } from '../report.ts';
import type { Context, Phase, ScenarioResult, Target } from './types.ts';

// Warm /token with the jwt-bearer grant (RFC 7523 §2.1; design/delegation-and-federation.md):
// a workload trading its platform's JWT for an agent's token, with no secret. The bench starts a
// tiny issuer of its own on loopback (discovery and JWKS, fetched once and then cached by the
// server); the load generator signs a new ES256 JWT of that issuer per request (each jti is
// accepted once). Measured in interleaved rounds with the warm secret /token of the same
// server. Target: ≥ 0.6 × the warm secret /token.

const GOAL = 0.6;
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const SUBJECT = 'system:serviceaccount:bench:agent';

export async function federationScenario(ctx: Context, phase: Phase): Promise<ScenarioResult> {
  const { warm, adminToken } = phase.fixtures;
  const idp = { url: phase.idp.url };
  const issuer = await startJwtIssuer();
  try {
    const agent = await createAgent(idp, adminToken, {
      name: 'bench-federated',
      ...AGENT_BODY,
      federatedIdentities: [{ issuer: issuer.url, subject: SUBJECT }],
    });
    const key = issuer.keys[0];
    const federatedJwt = {
      kind: 'jwt_bearer' as const,
      privateKeyPem: key.privateKeyPem,
      kid: key.kid,
      issuer: issuer.url,
      subject: SUBJECT,
      audience: phase.idp.url,
    };

    const secretRequest: RequestTemplate = {
      method: 'POST',
      path: '/token',
      headers: { authorization: basic(warm.clientId, warm.clientSecret), 'content-type': FORM },
      body: TOKEN_BODY,
    };
    const federatedRequest: RequestTemplate = {
      method: 'POST',
      path: '/token',
      headers: { 'content-type': FORM },
      body: new URLSearchParams({ grant_type: JWT_BEARER, scope: BENCH_SCOPE }).toString(),
      oneTimeJwt: federatedJwt,
    };
    const job = (request: RequestTemplate) => ({
      connections: ctx.options.connections,
      duration: ctx.options.duration,
      warmup: ctx.options.warmup,
      requests: [request],
    });

    // The secret is checked once (bcrypt) before the measurement; the issuer's keys are fetched once by this check.
    await accessToken(phase.idp, warm.clientId, warm.clientSecret, { scope: BENCH_SCOPE });
    await expect('a JWT of the bench issuer gets the agent a token', async () => {
      const res = await http(phase.idp.url, 'POST', '/token', {
        form: { grant_type: JWT_BEARER, scope: BENCH_SCOPE, assertion: await issuer.sign({ sub: SUBJECT, aud: phase.idp.url }) },
      });
      return res.status === 200;
    });

    const [secret, federated] = await measureAll(
      ctx,
      [
        { server: phase.idp, db: phase.db, job: job(secretRequest) },
        { server: phase.idp, db: phase.db, job: job(federatedRequest) },
      ],
      ctx.options.profile ? `token-federation-${phase.alg}` : undefined,
    );
    log(`token secret ${describe(secret)}`);
    log(`token jwt-bearer ${describe(federated)}`);
    const ratio = federated.rps / secret.rps;
    const targets: Target[] = [
      { name: 'warm /token with jwt-bearer req/s', goal: `≥ ${GOAL} × warm secret /token`, value: `${Math.round(ratio * 100) / 100}`, met: ratio >= GOAL },
      noFailures(federated),
    ];
    return {
      scenario: 'federation',
      label: `/token warm jwt-bearer (${phase.alg} tokens)`,
      alg: phase.alg,
      agentIdp: federated,
      baseline: { label: `agent-idp warm secret /token: ${secret.rps} req/s`, rps: secret.rps },
      ratio,
      targets,
      notes: [
        `agent ${agent.agentId as string}: each request carries a new ES256 JWT of a loopback issuer (discovery and JWKS fetched once, then cached), signed by the load generator`,
      ],
    };
  } finally {
    await issuer.close();
  }
}

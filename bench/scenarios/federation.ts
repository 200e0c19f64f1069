import { createAgent } from '../../test/factories.ts';
import { startJwtIssuer } from '../../test/helpers/jwt-issuer.ts';
import { BENCH_SCOPE, FORM, type RequestTemplate } from '../lib.ts';
import { AGENT_BODY, expect, http } from '../fixtures.ts';
import { measureAgainstWarmSecret } from './against-secret.ts';
import type { Context, Phase, ScenarioResult } from './types.ts';

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
  const { adminToken } = phase.fixtures;
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

    const federatedRequest: RequestTemplate = {
      method: 'POST',
      path: '/token',
      headers: { 'content-type': FORM },
      body: new URLSearchParams({ grant_type: JWT_BEARER, scope: BENCH_SCOPE }).toString(),
      oneTimeJwt: federatedJwt,
    };

    // The issuer's keys are fetched once, by this check.
    await expect('a JWT of the bench issuer gets the agent a token', async () => {
      const res = await http(phase.idp.url, 'POST', '/token', {
        form: { grant_type: JWT_BEARER, scope: BENCH_SCOPE, assertion: await issuer.sign({ sub: SUBJECT, aud: phase.idp.url }) },
      });
      return res.status === 200;
    });

    const [result] = await measureAgainstWarmSecret(ctx, phase, 'federation', GOAL, [
      {
        label: 'jwt-bearer',
        request: federatedRequest,
        notes: [
          `agent ${agent.agentId as string}: each request carries a new ES256 JWT of a loopback issuer (discovery and JWKS fetched once, then cached), signed by the load generator`,
        ],
      },
    ]);
    return result;
  } finally {
    await issuer.close();
  }
}

import { decodeJwt } from 'jose';
import { accessToken, agentWithSecret } from '../../test/factories.ts';
import { BENCH_SCOPE, FORM, JWT_RESOURCE, basic, type RequestTemplate } from '../lib.ts';
import { AGENT_BODY, expect, http } from '../fixtures.ts';
import { measureAgainstWarmSecret } from './against-secret.ts';
import type { Context, Phase, ScenarioResult } from './types.ts';

// Warm token exchange (RFC 8693; design/delegation-and-federation.md): an actor agent, with a
// secret already checked, trades a subject agent's token (one, for the whole run: its checks are
// answered from the coherent caches, as a busy orchestrator's would be) for a delegated token,
// measured in interleaved rounds with the warm secret /token of the same server.
// Target: ≥ 0.6 × the warm secret /token.

const GOAL = 0.6;
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

export async function exchangeScenario(ctx: Context, phase: Phase): Promise<ScenarioResult> {
  const { adminToken } = phase.fixtures;
  const idp = { url: phase.idp.url };
  const actor = await agentWithSecret(idp, adminToken, { name: 'bench-actor', ...AGENT_BODY });
  const subject = await agentWithSecret(idp, adminToken, { name: 'bench-subject', ...AGENT_BODY, mayAct: [actor.clientId] });
  const subjectToken = await accessToken(phase.idp, subject.clientId, subject.clientSecret, { scope: BENCH_SCOPE });

  const body = new URLSearchParams({ grant_type: GRANT, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN, scope: BENCH_SCOPE }).toString();
  const exchangeRequest: RequestTemplate = {
    method: 'POST',
    path: '/token',
    headers: { authorization: basic(actor.clientId, actor.clientSecret), 'content-type': FORM },
    body,
  };

  // The actor's secret is checked once (bcrypt) by this check, before the measurement, and the exchange must work.
  await expect('the actor exchanges the subject token for a delegated token', async () => {
    const res = await http(phase.idp.url, 'POST', '/token', {
      basic: [actor.clientId, actor.clientSecret],
      form: Object.fromEntries(new URLSearchParams(body)),
    });
    const token = (res.body as { access_token?: string } | undefined)?.access_token;
    const claims = token ? decodeJwt(token) : undefined;
    return (
      res.status === 200 &&
      claims?.sub === subject.clientId &&
      (claims?.act as { sub?: string } | undefined)?.sub === actor.clientId &&
      claims?.aud === JWT_RESOURCE
    );
  });

  const [result] = await measureAgainstWarmSecret(ctx, phase, 'exchange', GOAL, [
    { label: 'token exchange', request: exchangeRequest, notes: ['one subject token for the whole run; the actor authenticates with a secret (HTTP Basic)'] },
  ]);
  return result;
}

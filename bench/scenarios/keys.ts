import { createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { SignJWT, decodeJwt, importPKCS8 } from 'jose';
import { api } from '../../test/helpers/api.ts';
import { createAgent } from '../../test/factories.ts';
import { BENCH_SCOPE, FORM, basic, type RequestTemplate } from '../lib.ts';
import { AGENT_BODY, TOKEN_BODY, expect, http } from '../fixtures.ts';
import { measureAgainstWarmSecret, warmSecretRequest } from './against-secret.ts';
import type { Context, Phase, ScenarioResult } from './types.ts';

// Warm /token without a shared secret (design/keys-and-dpop.md): an agent authenticating with a
// client assertion (private_key_jwt, ES256, a new one per request: each is accepted once), and
// an agent with a secret binding each token to its key with a DPoP proof (new per request too),
// measured in interleaved rounds with the warm secret /token of the same server. The load
// generator signs every assertion and proof (bench/load.ts). Target: each ≥ 0.7 × the warm secret /token.

const GOAL = 0.7;

export async function keysScenario(ctx: Context, phase: Phase): Promise<ScenarioResult[]> {
  const { warm, adminToken } = phase.fixtures;
  const idp = { url: phase.idp.url };

  // The key agent and its generated ES256 pair (the private key comes once, in this answer).
  const keyAgent = await createAgent(idp, adminToken, { name: 'bench-key', ...AGENT_BODY });
  const created = await api(idp.url, adminToken).post(`/api/v1/agents/${keyAgent.agentId}/credentials`, {
    body: { type: 'private_key_jwt', alg: 'ES256', name: 'bench' },
  });
  if (created.status !== 201) throw new Error(`no key credential: ${created.text}`);
  const assertionJwt = {
    kind: 'client_assertion' as const,
    privateKeyPem: created.body.privateKeyPem as string,
    kid: created.body.kid as string,
    clientId: keyAgent.agentId as string,
    audience: phase.idp.url,
  };
  // The DPoP key of the secret agent.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicJwk = createPublicKey(privateKey).export({ format: 'jwk' }) as Record<string, string>;
  const dpopJwt = {
    kind: 'dpop' as const,
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicJwk,
    htu: `${phase.idp.url}/token`,
  };

  const assertionRequest: RequestTemplate = { method: 'POST', path: '/token', headers: { 'content-type': FORM }, body: TOKEN_BODY, oneTimeJwt: assertionJwt };
  const dpopRequest: RequestTemplate = { ...warmSecretRequest(phase), oneTimeJwt: dpopJwt };

  // What the load generator will send, made once here with jose, must work.
  const now = Math.floor(Date.now() / 1000);
  const signer = await importPKCS8(assertionJwt.privateKeyPem, 'ES256');
  const oneAssertion = await new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: assertionJwt.kid })
    .setIssuer(assertionJwt.clientId)
    .setSubject(assertionJwt.clientId)
    .setAudience(assertionJwt.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(signer);
  await expect('a client assertion gets a token', async () => {
    const res = await http(phase.idp.url, 'POST', '/token', {
      form: { grant_type: 'client_credentials', scope: BENCH_SCOPE, client_assertion_type: ASSERTION_TYPE, client_assertion: oneAssertion },
    });
    return res.status === 200;
  });
  const proof = await new SignJWT({ htm: 'POST', htu: dpopJwt.htu, jti: randomUUID(), iat: now })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: publicJwk })
    .sign(await importPKCS8(dpopJwt.privateKeyPem, 'ES256'));
  await expect('a DPoP proof gets a token bound to its key', async () => {
    const res = await fetch(`${phase.idp.url}/token`, {
      method: 'POST',
      headers: { authorization: basic(warm.clientId, warm.clientSecret), 'content-type': FORM, dpop: proof },
      body: TOKEN_BODY,
    });
    const body = (await res.json()) as { token_type?: string; access_token?: string };
    return res.status === 200 && body.token_type === 'DPoP' && decodeJwt(body.access_token!).cnf !== undefined;
  });

  return measureAgainstWarmSecret(ctx, phase, 'keys', GOAL, [
    { label: 'private_key_jwt', request: assertionRequest, notes: ['each request carries a new ES256 client assertion, signed by the load generator'] },
    { label: 'DPoP', request: dpopRequest, notes: ['each request carries a new ES256 DPoP proof, signed by the load generator'] },
  ]);
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

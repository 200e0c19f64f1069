import pg from 'pg';
import { jwtVerify, createRemoteJWKSet } from 'jose';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { api, call } from './helpers/api.ts';
import { createAgent, createOrg, operatorToken } from './factories.ts';
import { startJwtIssuer, type JwtIssuer } from './helpers/jwt-issuer.ts';
import { describeOnPostgres } from './helpers/postgres-only.ts';
import { FederationMap, type FederatedMapping } from '../src/coherence/federation-map.ts';
import type { ClientAgent } from '../src/agents/agent.entity.ts';

// The jwt-bearer grant's lookups, (issuer, subject) → agent, kept in each instance's memory
// (coherence/federation-map.ts): a mapping created, changed or removed, or its agent changed,
// suspended or decommissioned, through one instance is honoured by the next /token on the other
// at once, whether the other had the mapping in memory or had remembered that there was none.
// Two instances on one database, as in coherence.test.ts; on the embedded database nothing is
// cached and the same must hold.

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

let a: TestIdp;
let b: TestIdp;
let org: Awaited<ReturnType<typeof createOrg>>;
let issuer: JwtIssuer;

beforeAll(async () => {
  const env = { FEDERATION_ALLOW_INSECURE_ISSUERS: 'true' };
  a = await startTestIdp({ env });
  b = await startTestIdp({ replicaOf: a, env });
  org = await createOrg(a);
  issuer = await startJwtIssuer();
  // Some agent always federates with the issuer: a subject mapped to none is `unknown_subject`, whatever runs first.
  await createAgent(a, org.token, { federatedIdentities: [{ issuer: issuer.url, subject: 'anchor' }] });
});
afterAll(async () => {
  await b.close();
  await a.close();
  await issuer.close();
});

let subjects = 0;
const newSubject = () => `system:serviceaccount:ns-${process.pid}:sa-${++subjects}`;

async function exchange(idp: TestIdp, subject: string, claims: Record<string, unknown> = {}) {
  // Both instances are one issuer: the primary's URL.
  const assertion = await issuer.sign({ sub: subject, aud: a.url, ...claims });
  const data = new URLSearchParams({ grant_type: JWT_BEARER, assertion }).toString();
  return call(idp.url, 'POST', '/token', { raw: { contentType: 'application/x-www-form-urlencoded', data } });
}

async function tokenOf(idp: TestIdp, subject: string) {
  const res = await exchange(idp, subject);
  expect([res.status, res.body.error_description]).toEqual([200, undefined]);
  const { payload } = await jwtVerify(res.body.access_token, createRemoteJWKSet(new URL(`${idp.url}/.well-known/jwks.json`)));
  return payload;
}

/** The reason of the newest token.denied of the agent, or of no agent (those the operator sees). */
async function lastDenial(agentId?: string): Promise<string | undefined> {
  const res = agentId
    ? await api(a.url, org.token).get(`/api/v1/audit?action=token.denied&agentId=${agentId}&limit=1`)
    : await api(a.url, await operatorToken(a)).get('/api/v1/audit?action=token.denied&limit=1');
  return res.body.data[0]?.details.reason;
}

async function expectRefused(idp: TestIdp, subject: string, reason: string, claims: Record<string, unknown> = {}, agentId?: string) {
  const res = await exchange(idp, subject, claims);
  expect([res.status, res.body.error]).toEqual([400, 'invalid_grant']);
  expect(await lastDenial(agentId)).toBe(reason);
}

/** An agent mapped to a new subject, whose mapping instance b has already used (b's memory holds it). */
async function warmFederatedAgent(body: Record<string, unknown> = {}) {
  const subject = newSubject();
  const agent = await createAgent(a, org.token, {
    scopes: ['jobs:read', 'jobs:write'],
    audiences: ['https://api.example.com'],
    federatedIdentities: [{ issuer: issuer.url, subject }],
    ...body,
  });
  expect((await tokenOf(b, subject)).sub).toBe(agent.agentId);
  return { agentId: agent.agentId as string, subject };
}

const patch = (agentId: string, body: Record<string, unknown>) => api(a.url, org.token).patch(`/api/v1/agents/${agentId}`, { body });

describe('a federated identity changed through one instance', () => {
  it('removed: the other refuses its next assertion, and takes it again once it is back', async () => {
    const { agentId, subject } = await warmFederatedAgent();
    expect((await patch(agentId, { federatedIdentities: [] })).status).toBe(200);
    await expectRefused(b, subject, 'unknown_subject');
    expect((await patch(agentId, { federatedIdentities: [{ issuer: issuer.url, subject }] })).status).toBe(200);
    expect((await tokenOf(b, subject)).sub).toBe(agentId);
  });

  it('created after the other refused it: the other takes it at once (its memory of the refusal is gone)', async () => {
    const subject = newSubject();
    await expectRefused(b, subject, 'unknown_subject');
    await expectRefused(b, subject, 'unknown_subject');
    const agent = await createAgent(a, org.token, { scopes: ['jobs:read'], federatedIdentities: [{ issuer: issuer.url, subject }] });
    expect((await tokenOf(b, subject)).sub).toBe(agent.agentId);
  });

  it('of an issuer nobody federated with: the other takes it at once', async () => {
    const fresh = await startJwtIssuer();
    try {
      const subject = newSubject();
      const sign = async (idp: TestIdp) => {
        const data = new URLSearchParams({ grant_type: JWT_BEARER, assertion: await fresh.sign({ sub: subject, aud: a.url }) }).toString();
        return call(idp.url, 'POST', '/token', { raw: { contentType: 'application/x-www-form-urlencoded', data } });
      };
      expect((await sign(b)).status).toBe(400);
      expect(await lastDenial()).toBe('unknown_issuer');
      await createAgent(a, org.token, { federatedIdentities: [{ issuer: fresh.url, subject }] });
      expect((await sign(b)).status).toBe(200);
    } finally {
      await fresh.close();
    }
  });

  it('moved to another agent: the other mints for the new agent at once', async () => {
    const { agentId, subject } = await warmFederatedAgent();
    const other = await createAgent(a, org.token, { scopes: ['jobs:read'] });
    await patch(agentId, { federatedIdentities: [] });
    expect((await patch(other.agentId, { federatedIdentities: [{ issuer: issuer.url, subject }] })).status).toBe(200);
    expect((await tokenOf(b, subject)).sub).toBe(other.agentId);
  });

  it('given an audience: the other wants that audience at once', async () => {
    const { agentId, subject } = await warmFederatedAgent();
    await patch(agentId, { federatedIdentities: [{ issuer: issuer.url, subject, audience: 'https://idp.example.com/ci' }] });
    await expectRefused(b, subject, 'audience', {}, agentId);
    expect((await exchange(b, subject, { aud: 'https://idp.example.com/ci' })).status).toBe(200);
  });
});

describe('the agent of a federated identity changed through one instance', () => {
  it('suspended: the other refuses at once; reactivated: the other takes it again', async () => {
    const { agentId, subject } = await warmFederatedAgent();
    await patch(agentId, { status: 'suspended' });
    await expectRefused(b, subject, 'agent_suspended', {}, agentId);
    await patch(agentId, { status: 'active' });
    expect((await tokenOf(b, subject)).sub).toBe(agentId);
  });

  it('decommissioned: the other refuses at once', async () => {
    const { agentId, subject } = await warmFederatedAgent();
    expect((await api(a.url, org.token).delete(`/api/v1/agents/${agentId}`)).status).toBe(204);
    const res = await exchange(b, subject);
    expect([res.status, res.body.error]).toEqual([400, 'invalid_grant']);
  });

  it('with scopes taken away: the other mints with what is left at once', async () => {
    const { agentId, subject } = await warmFederatedAgent();
    await patch(agentId, { scopes: ['jobs:read'] });
    expect((await tokenOf(b, subject)).scope).toBe('jobs:read');
  });

  it('in an org whose limits changed: the other applies the new default quota at once', async () => {
    const other = await createOrg(a);
    const subject = newSubject();
    await createAgent(a, other.token, { federatedIdentities: [{ issuer: issuer.url, subject }] });
    await tokenOf(b, subject);
    const operator = await operatorToken(a);
    const res = await api(a.url, operator).patch(`/api/v1/orgs/${other.orgId}`, { body: { limits: { tokensPerMinutePerAgent: 1 } } });
    expect(res.status).toBe(200);
    // One token in this minute is the new limit: the first one may pass, the next cannot.
    const statuses = [(await exchange(b, subject)).status, (await exchange(b, subject)).status];
    expect(statuses).toContain(429);
  });
});

describeOnPostgres('the lookups kept in memory', 'PGlite is one session: no LISTEN/NOTIFY, so nothing is cached', () => {
  async function lock(tables: string) {
    const client = new pg.Client({ connectionString: a.db.url });
    await client.connect();
    await client.query('BEGIN');
    await client.query(`LOCK TABLE ${tables} IN ACCESS EXCLUSIVE MODE`);
    return async () => {
      await client.query('ROLLBACK');
      await client.end();
    };
  }

  it('answer a warm assertion without reading the mapping, its agent or its org', async () => {
    const { agentId, subject } = await warmFederatedAgent();
    const unlock = await lock('federated_identities, agents, orgs');
    try {
      // A read of any of those tables would wait for the lock; this answers at once.
      expect((await tokenOf(b, subject)).sub).toBe(agentId);
    } finally {
      await unlock();
    }
  });

  it('answer a refusal remembered, without reading the mappings again', async () => {
    const subject = newSubject();
    await expectRefused(b, subject, 'unknown_subject');
    const unlock = await lock('federated_identities');
    try {
      const res = await exchange(b, subject);
      expect([res.status, res.body.error]).toEqual([400, 'invalid_grant']);
    } finally {
      await unlock();
    }
  });

  it("follow an operator's SQL that moves a mapping to another agent", async () => {
    const { agentId, subject } = await warmFederatedAgent();
    const other = await createAgent(a, org.token, { scopes: ['jobs:read'] });
    const client = new pg.Client({ connectionString: a.db.url });
    await client.connect();
    try {
      const moved = await client.query('UPDATE federated_identities SET agent_id = $1 WHERE agent_id = $2 AND subject = $3', [other.agentId, agentId, subject]);
      expect(moved.rowCount).toBe(1);
    } finally {
      await client.end();
    }
    // No writer of ours settles here: a barrier now is acknowledged once b has heard the trigger's notifications.
    await a.idp.coherence.settle();
    expect((await tokenOf(b, subject)).sub).toBe(other.agentId);
  });

  it('are bounded, and the index by agent follows what the bound pushes out', async () => {
    const coherence = b.idp.coherence;
    const map = new FederationMap(coherence, 2);
    const mapping = (agentId: string, subject: string): FederatedMapping => ({
      agent: {
        id: agentId,
        orgId: org.orgId,
        status: 'active',
        scopes: [],
        audiences: [],
        accessTokenTtlSeconds: null,
        tokenQuota: null,
        requireDpop: false,
        mayAct: [],
      } as ClientAgent,
      identity: { issuer: 'https://ci.example.com', subject, audience: null },
    });
    const ticket = coherence.generation;
    map.set('https://ci.example.com', 's1', mapping('x', 's1'), ticket);
    map.set('https://ci.example.com', 's2', mapping('y', 's2'), ticket);
    map.set('https://ci.example.com', 's3', mapping('y', 's3'), ticket);
    map.set('https://ci.example.com', 'nobody', 'unknown_subject', ticket);
    expect(map.get('https://ci.example.com', 's1')).toBeUndefined();
    expect(map.size).toEqual({ found: 2, missing: 1, agents: 1 });
    // A read that began before a change heard since is not kept.
    await coherence.announce('agent', 'unrelated');
    await coherence.settle();
    map.set('https://ci.example.com', 's4', mapping('z', 's4'), ticket);
    expect(map.get('https://ci.example.com', 's4')).toBeUndefined();
    // That notification dropped every miss, but no mapping of another agent.
    expect(map.size).toEqual({ found: 2, missing: 0, agents: 1 });
    await coherence.announce('agent', 'y');
    await coherence.settle();
    expect(map.size).toEqual({ found: 0, missing: 0, agents: 0 });
  });
});

import { openApiDocument } from '../src/http/openapi.ts';
import { startTestIdp, type TestIdp } from './helpers/idp.ts';
import { operationFor } from './helpers/api.ts';

// Every answer of the other end-to-end tests is checked against openapi/openapi.yaml by
// test/helpers/api.ts; this file checks the other direction: every route is documented.

let t: TestIdp;
beforeAll(async () => {
  t = await startTestIdp();
});
afterAll(() => t.close());

describe('openapi/openapi.yaml', () => {
  it('documents every route of the management router', () => {
    const routes = t.idp.routes;
    expect(routes.length).toBeGreaterThanOrEqual(18);
    for (const { method, path } of routes) {
      const documented = openApiDocument().paths[path]?.[method.toLowerCase()];
      expect({ method, path, documented: Boolean(documented) }).toEqual({ method, path, documented: true });
    }
  });

  it("names in each route's chain the scope it needs, and makes every writing route wait for every instance", () => {
    for (const route of t.idp.routes) {
      const writes = route.method !== 'GET';
      expect({ ...route, scoped: typeof route.scope === 'string' }).toEqual({ ...route, scoped: true });
      // A change acknowledged by one instance must hold on all of them (src/coherence/settled.ts).
      expect({ method: route.method, path: route.path, settles: route.settles }).toEqual({ method: route.method, path: route.path, settles: writes });
    }
  });

  it('documents the OAuth endpoints served by oidc-provider, the health probes and the MCP endpoint', () => {
    for (const [method, path] of [
      ['GET', '/.well-known/openid-configuration'],
      ['GET', '/.well-known/oauth-authorization-server'],
      ['GET', '/.well-known/jwks.json'],
      ['POST', '/token'],
      ['GET', '/healthz'],
      ['GET', '/readyz'],
      ['POST', '/mcp'],
      ['GET', '/mcp'],
      ['DELETE', '/mcp'],
      ['GET', '/.well-known/oauth-protected-resource/mcp'],
    ]) {
      expect(operationFor(method, path)).toBeDefined();
    }
  });

  it('holds every request schema the routes validate with', () => {
    const schemas = openApiDocument().components.schemas;
    for (const name of [
      'CreateOrgRequest',
      'CreateAgentRequest',
      'UpdateAgentRequest',
      'CreateCredentialRequest',
      'RotateCredentialRequest',
      'PageQuery',
      'AgentListQuery',
      'CredentialListQuery',
      'CreateKeyRequest',
      'EmptyRequest',
      'AuditQuery',
      'AuditExportQuery',
    ]) {
      expect(schemas[name]).toBeDefined();
    }
  });

  it('answers unknown paths with a problem, not a stack', async () => {
    const res = await fetch(`${t.url}/api/v1/nothing-here`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 404, code: 'not_found', requestId: res.headers.get('x-request-id') });
  });
});

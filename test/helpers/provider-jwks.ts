import { createServer } from 'node:http';
import type { TestIdp } from './idp.ts';

// The JWKS as oidc-provider itself answers it: through the Koa app alone (ProviderHost.middleware
// hands the path to the current Provider), without the server handler's answer from fixed bytes
// (src/oauth/endpoints/jwks.ts). The two must not differ.

const HEADERS = ['content-type', 'cache-control', 'etag', 'access-control-allow-origin', 'vary', 'content-length'];

export async function expectJwksAsProviderServes(t: TestIdp): Promise<string> {
  const server = createServer(t.idp.app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const providerUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const [ours, theirs] = await Promise.all([fetch(`${t.url}/.well-known/jwks.json`), fetch(`${providerUrl}/.well-known/jwks.json`)]);
    expect(await ours.text()).toBe(await theirs.text());
    for (const header of HEADERS) expect([header, ours.headers.get(header)]).toEqual([header, theirs.headers.get(header)]);
    return ours.headers.get('etag')!;
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

import { parse as parseQuery } from 'node:querystring';
import type { IncomingMessage } from 'node:http';
import type { Context, Next } from 'koa';
import type { ClientStore } from '../client-store.ts';
import { clientAuthNotes, type FederatedNote } from '../client-auth/note.ts';
import { claimedIdentity } from '../federation/assertion.ts';
import { TOKEN_PATH } from '../paths.ts';

// The jwt-bearer grant (RFC 7523 §2.1) comes with no client authentication, but oidc-provider's
// token endpoint identifies a client on every request (shared/client_auth.js: no client_id,
// no request). So, before the provider reads the request, the client is named after the
// assertion: its (iss, sub) is looked up, and the mapped agent's id is added as `client_id`,
// which the provider treats as the `none` method; the adapter then loads that agent, for this
// request only, as a client with `none` and the jwt-bearer grant, and the grant verifies the
// assertion before any token is minted. A request whose assertion maps to no active agent names
// a placeholder client that only the grant's refusal (400 invalid_grant, with the reason) awaits.
//
// Only POSTs to /token without an Authorization header are read here (a Basic-authenticated
// request, the hot path, goes on untouched); the body read is handed on to the provider as
// `req.body`, which it accepts in place of the stream (shared/selective_body.js: it says so once
// per process with a notice on stderr, "already parsed request body detected").

import { JWT_BEARER_GRANT as JWT_BEARER } from '../clients.ts';
/** The client of a jwt-bearer request whose assertion maps to no active agent: never a UUID, so never an agent's id. */
export const FEDERATION_UNMAPPED_CLIENT_ID = 'jwt-bearer-unmapped';
/** oidc-provider's own bound on a token request body (shared/selective_body.js). */
const BODY_LIMIT = 56 * 1024;

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req.iterator({ destroyOnReturn: false })) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

async function federatedNote(clients: Pick<ClientStore, 'findFederated'>, assertion: unknown): Promise<FederatedNote> {
  const claimed = typeof assertion === 'string' ? claimedIdentity(assertion) : undefined;
  if (!claimed) return { clientId: FEDERATION_UNMAPPED_CLIENT_ID, failure: 'malformed' };
  const found = await clients.findFederated(claimed.issuer, claimed.subject);
  if (typeof found === 'string') return { clientId: FEDERATION_UNMAPPED_CLIENT_ID, ...claimed, failure: found };
  const { agent, identity } = found;
  if (agent.status !== 'active') return { clientId: FEDERATION_UNMAPPED_CLIENT_ID, ...claimed, agent, failure: `agent_${agent.status}` };
  return { clientId: agent.id, ...claimed, agent, identity };
}

/** Provider middleware, inside the client-auth note and the token audit. */
export function federatedClient(clients: Pick<ClientStore, 'findFederated'>) {
  // Not async on the way through: every request of the provider passes here (an extra promise per JWKS request shows).
  return function nameFederatedClient(ctx: Context, next: Next) {
    if (ctx.method !== 'POST' || ctx.path !== TOKEN_PATH || ctx.headers.authorization !== undefined || !ctx.is('application/x-www-form-urlencoded')) {
      return next();
    }
    // A body declared too large is the provider's to refuse, as before (its stream untouched).
    if (Number(ctx.get('content-length')) > BODY_LIMIT) return next();
    return nameFromBody(ctx, next, clients);
  };
}

async function nameFromBody(ctx: Context, next: Next, clients: Pick<ClientStore, 'findFederated'>): Promise<void> {
  const body = await readBody(ctx.req);
  if (body === undefined) {
    // Only a chunked body without a declared length gets here: the provider's own answer to it.
    ctx.status = 400;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { error: 'invalid_request', error_description: 'failed to parse the request body' };
    return;
  }
  const req = ctx.req as IncomingMessage & { body?: string | Buffer };
  req.body = body;
  const params = parseQuery(body.toString('utf8'));
  // A request that authenticates a client in the body is not a federation (and is the provider's to judge).
  if (params.grant_type !== JWT_BEARER || params.client_id !== undefined || params.client_secret !== undefined || params.client_assertion !== undefined) {
    return next();
  }
  const federation = await federatedNote(clients, params.assertion);
  const note = clientAuthNotes.getStore();
  if (note) note.federation = federation;
  req.body = `${body.toString('utf8')}&client_id=${encodeURIComponent(federation.clientId)}`;
  return next();
}

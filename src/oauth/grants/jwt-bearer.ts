import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { handler as clientCredentialsHandler } from 'oidc-provider/lib/actions/grants/client_credentials.js';
import * as grantHelpers from 'oidc-provider/lib/helpers/grants.js';
import { clientAuthNotes } from '../client-auth/note.ts';
import { JWT_BEARER_GRANT } from '../clients.ts';
import { AssertionRefused, type AssertionVerifier } from '../federation/assertion.ts';

// The JWT bearer grant (RFC 7523 §2.1): an agent's workload trades a JWT from a trusted external
// issuer (a CI platform, a Kubernetes cluster) for the agent's token, with no secret. The
// request's client is the agent the assertion maps to (hooks/federated-client.ts, with the
// `none` method); here the assertion is verified (federation/assertion.ts), and then the token
// is minted by oidc-provider's own client_credentials handler, so that it is the same token:
// same format, signing key, scope and audience rules (grants/client-credentials.ts), jwt
// customizer, TTL and DPoP binding (RFC 9449). Every refusal is 400 invalid_grant, its reason
// in the note for token.denied.

const DESCRIPTIONS: Record<string, string> = {
  malformed: 'the assertion is not a JWT with iss and sub',
  // One answer for both: the caller learns nothing of which issuers are mapped (token.denied tells the two apart).
  unknown_issuer: 'no agent federates with the issuer and subject of the assertion',
  unknown_subject: 'no agent federates with the issuer and subject of the assertion',
  agent_suspended: 'the agent the assertion maps to is suspended',
  agent_decommissioned: 'the agent the assertion maps to is decommissioned',
};

function refuse(reason: string, description: string): never {
  const note = clientAuthNotes.getStore();
  if (note) note.reason = reason;
  const err = new errors.InvalidGrant(description);
  err.error_description = description;
  throw err;
}

export function registerJwtBearerGrant(provider: Provider, verifier: AssertionVerifier): void {
  const helpers = Object.fromEntries(Object.entries(grantHelpers).map(([name, helper]) => [name, helper.bind(undefined, provider)]));
  async function jwtBearerHandler(ctx: KoaContextWithOIDC): Promise<void> {
    const federation = clientAuthNotes.getStore()?.federation;
    if (!federation?.identity || federation.failure) {
      const reason = federation?.failure ?? 'malformed';
      refuse(reason, DESCRIPTIONS[reason] ?? 'the assertion cannot be used');
    }
    try {
      await verifier.verify(ctx.oidc.params!.assertion as string, federation.identity);
    } catch (err) {
      if (err instanceof AssertionRefused) refuse(err.reason, err.message);
      throw err;
    }
    await clientCredentialsHandler(provider, helpers, ctx);
  }
  // `resource` may repeat (RFC 8707), as with client_credentials; the handler refuses more than one.
  provider.registerGrantType(JWT_BEARER_GRANT, jwtBearerHandler as never, ['assertion', 'scope', 'resource'], ['resource']);
}

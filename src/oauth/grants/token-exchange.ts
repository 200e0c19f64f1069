import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import type Provider from 'oidc-provider';
import validateDpop from 'oidc-provider/lib/helpers/validate_dpop.js';
import { applyDpopBinding } from 'oidc-provider/lib/helpers/grant_common.js';
import { checkDpopRequired } from 'oidc-provider/lib/helpers/sender_constraints.js';
import type { Config } from '../../../config/index.ts';
import type { Keyset } from '../../keys/key-ring.ts';
import { allowedAudiences } from '../../policies/grants.ts';
import type { AgentClient } from '../clients.ts';
import type { ChainToken } from '../client-store.ts';
import { clientAuthNotes } from '../client-auth/note.ts';
import { managementAudiences } from '../paths.ts';
import type { TokenQuotas } from '../../throttling/token-quota.ts';
import { assertWithinQuota } from './quota.ts';
import type { AccessTokenVerifier, ActClaim } from '../verifier.ts';

// The token exchange grant (RFC 8693) for delegation (design/delegation-and-federation.md): an
// agent (the actor, authenticated as a client by any method) trades a token of another agent of
// its org (the subject) for a token that says both: `sub` the subject, `act` the actor, nested
// for each earlier actor (§4.1). It never carries more than the subject token: its scopes, an
// audience of the subject agent, a lifetime that ends no later. It is minted as a
// client_credentials token of the actor (the same RFC 9068 format, keys and customizer, DPoP
// binding by oidc-provider's own helpers), with the delegation claims added by the customizer.

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const PARAMETERS = ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type', 'scope', 'resource', 'audience'];

/** What an exchanged token says beyond the actor's own token, and what its audit event records. */
export interface Delegation {
  /** The subject agent (`sub`). */
  subject: string;
  orgId: string;
  act: ActClaim;
  /** The tokens up the chain, the subject agent's own first; the last is the subject token. */
  tokens: ChainToken[];
  /** The chain's agents: the subject, then each actor in order, the new one last. */
  agents: string[];
}

// The token being minted → its delegation, for the JWT customizer (the provider builds the JWT in save()).
const delegations = new WeakMap<object, Delegation>();

/** The delegation claims of an exchanged token (RFC 8693 §4.1 `act`, our `delegation`), when `token` is one. */
export function delegationClaims(token: object): Record<string, unknown> | undefined {
  const delegation = delegations.get(token);
  if (!delegation) return undefined;
  return { sub: delegation.subject, org_id: delegation.orgId, act: delegation.act, delegation: delegation.tokens };
}

/** The delegation of the token this /token request issued, for its audit event. */
export function delegationOf(token: object | undefined): Delegation | undefined {
  return token ? delegations.get(token) : undefined;
}

export interface TokenExchangeDeps {
  config: Pick<Config, 'publicUrl' | 'defaultAudience' | 'accessTokenTtlSeconds' | 'maxDelegationDepth'>;
  keyset: Pick<Keyset, 'activeAlg' | 'activeKid'>;
  verifier: Pick<AccessTokenVerifier, 'decode' | 'verify'>;
  quotas: Pick<TokenQuotas, 'refusal'>;
}

/**
 * RFC 8693 §2.2.2: a subject or actor token that is invalid for any reason, or unacceptable by
 * policy, is invalid_request; the reason goes to the audit event (token.denied).
 */
function refuse(reason: string, description: string): never {
  const note = clientAuthNotes.getStore();
  if (note) note.reason = reason;
  throw new errors.InvalidRequest(description);
}

function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new errors.InvalidTarget(`only a single ${name} value is supported for this grant type`);
  return value;
}

export function registerTokenExchange(provider: Provider, { config, keyset, verifier, quotas }: TokenExchangeDeps): void {
  const management = managementAudiences(config.publicUrl);

  async function exchangeToken(ctx: KoaContextWithOIDC): Promise<void> {
    const params = ctx.oidc.params as Record<string, unknown>;
    const client = ctx.oidc.client as unknown as AgentClient;
    const subjectToken = params.subject_token;
    if (typeof subjectToken !== 'string' || !subjectToken) refuse('subject_token_missing', 'missing required parameter subject_token');
    if (params.subject_token_type !== ACCESS_TOKEN_TYPE) refuse('unsupported_subject_token_type', `subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
    if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
      refuse('unsupported_requested_token_type', `requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
    }

    // §2.1: the actor token, when given, is the caller's own proof of who acts.
    if (params.actor_token !== undefined || params.actor_token_type !== undefined) {
      if (typeof params.actor_token !== 'string' || params.actor_token_type !== ACCESS_TOKEN_TYPE) {
        refuse('invalid_actor_token', `actor_token and actor_token_type (${ACCESS_TOKEN_TYPE}) are given together`);
      }
      const actor = await verifier.verify(params.actor_token);
      if (!actor || actor.claims.client_id !== client.clientId || actor.claims.sub !== client.clientId) {
        refuse('actor_token_not_caller', 'the actor_token is not an active access token of the authenticated client');
      }
    }

    const verified = await verifier.verify(subjectToken);
    if (!verified) {
      const ours = await verifier.decode(subjectToken);
      refuse(
        ours ? 'subject_token_inactive' : 'subject_token_invalid',
        ours ? 'the subject_token is revoked, or its agent is not active' : 'the subject_token is not a valid access token of this issuer',
      );
    }
    const { claims } = verified;
    if (claims.org_id !== client.org_id) refuse('subject_token_other_org', 'the subject_token belongs to another org');
    // The subject agent as the check just read it (active, of the token's org).
    const subject = verified.agent;
    // Checked against the agent's current row, not a claim of the token.
    if (!subject.mayAct.includes(client.clientId)) refuse('actor_not_allowed', "this client is not in the subject agent's mayAct");
    const earlier = claims.delegation ?? [];
    if (earlier.length + 1 > config.maxDelegationDepth) {
      refuse('delegation_too_deep', `a delegation chain is at most ${config.maxDelegationDepth} actors deep`);
    }

    // Scopes: the subject token's, still held by its agent; never more (RFC 8693 §2.1, §5).
    const requested = typeof params.scope === 'string' && params.scope ? params.scope.split(' ') : undefined;
    const beyond = requested?.find((scope) => !verified.scopes.includes(scope));
    if (beyond !== undefined) {
      const note = clientAuthNotes.getStore();
      if (note) note.reason = 'scope_beyond_subject';
      throw new errors.InvalidScope("the requested scope is not in the subject token's scope", beyond);
    }
    const scope = (requested ?? verified.scopes).join(' ') || undefined;

    // Audience: a requested resource among the subject agent's audiences, else the subject token's.
    const target = single(params.resource, 'resource') ?? single(params.audience, 'audience');
    if (target !== undefined && !allowedAudiences(subject, management, config.defaultAudience).includes(target)) {
      const note = clientAuthNotes.getStore();
      if (note) note.reason = 'resource_not_allowed';
      throw new errors.InvalidTarget('the resource is not one of the audiences of the subject agent');
    }
    const audience = target ?? (Array.isArray(claims.aud) ? claims.aud[0] : claims.aud);

    // An exchanged token counts towards the actor's quota, as its own tokens do.
    assertWithinQuota(ctx, client, quotas);
    const dPoP = await validateDpop(provider, ctx);
    const now = Math.floor(Date.now() / 1000);
    // An exchange never extends a lifetime: at most the actor's own, and never past the subject token's exp.
    const expiresIn = Math.min(client.access_token_ttl ?? config.accessTokenTtlSeconds, claims.exp - now);
    const token = new provider.ClientCredentials({ client: ctx.oidc.client!, scope, expiresIn });
    token.resourceServer = new provider.ResourceServer(audience, {
      scope: scope ?? '',
      audience,
      accessTokenTTL: expiresIn,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: keyset.activeAlg, kid: keyset.activeKid } },
    });
    await applyDpopBinding(provider, ctx, dPoP, token);
    checkDpopRequired(provider, ctx, dPoP);

    const previous = claims.act;
    delegations.set(token, {
      subject: claims.sub,
      orgId: claims.org_id,
      act: previous ? { sub: client.clientId, act: previous } : { sub: client.clientId },
      tokens: [...earlier, { jti: claims.jti, kid: verified.kid }],
      agents: [claims.sub, ...(previous ? chainActors(previous) : []), client.clientId],
    });
    ctx.oidc.entity('ClientCredentials', token);
    const value = await token.save();
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: token.tokenType,
      expires_in: token.expiration,
      ...(token.scope ? { scope: token.scope } : {}),
    };
  }

  provider.registerGrantType(TOKEN_EXCHANGE_GRANT, exchangeToken, PARAMETERS, ['resource', 'audience']);
}

/** The actors of an `act` claim, earliest first. */
function chainActors(act: ActClaim): string[] {
  const actors: string[] = [];
  for (let at: ActClaim | undefined = act; at; at = at.act) actors.unshift(at.sub);
  return actors;
}

// oidc-provider's own grant helpers, as its built-in grants use them (lib/actions/grants/*.js),
// for a grant registered with registerGrantType: the package ships no types for lib/.
declare module 'oidc-provider/lib/helpers/validate_dpop.js' {
  import type Provider from 'oidc-provider';
  import type { KoaContextWithOIDC } from 'oidc-provider';
  /** RFC 9449 §4.3: the request's DPoP proof checked (undefined without one), or InvalidDpopProof. */
  export default function validateDpop(provider: Provider, ctx: KoaContextWithOIDC): Promise<{ thumbprint: string; jti: string; iat: number } | undefined>;
}

declare module 'oidc-provider/lib/helpers/grant_common.js' {
  import type Provider from 'oidc-provider';
  import type { KoaContextWithOIDC } from 'oidc-provider';
  /** The proof's jti claimed once (ReplayDetection), and the token bound to its key (cnf.jkt). */
  export function applyDpopBinding(
    provider: Provider,
    ctx: KoaContextWithOIDC,
    dPoP: { thumbprint: string; jti: string; iat: number } | undefined,
    token: { setThumbprint(prop: 'jkt', input: string): void },
  ): Promise<void>;
}

declare module 'oidc-provider/lib/helpers/sender_constraints.js' {
  import type Provider from 'oidc-provider';
  import type { KoaContextWithOIDC } from 'oidc-provider';
  /** A client with dpop_bound_access_tokens gets no token without a proof (InvalidGrant). */
  export function checkDpopRequired(provider: Provider, ctx: KoaContextWithOIDC, dPoP: unknown): void;
}

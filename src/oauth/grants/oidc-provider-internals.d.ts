// The two modules of oidc-provider 9 (no `exports` map: importable) that the jwt-bearer grant
// reuses so that it mints exactly as client_credentials does (grants/jwt-bearer.ts).

declare module 'oidc-provider/lib/actions/grants/client_credentials.js' {
  import type Provider from 'oidc-provider';
  import type { KoaContextWithOIDC } from 'oidc-provider';
  export const handler: (provider: Provider, helpers: Record<string, unknown>, ctx: KoaContextWithOIDC) => Promise<void>;
}

declare module 'oidc-provider/lib/helpers/grants.js' {
  const helpers: Record<string, (provider: unknown, ...args: unknown[]) => unknown>;
  export = helpers;
}

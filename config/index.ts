import { availableParallelism } from 'node:os';
import { isUuid } from '../src/lib/ids.ts';

// Every setting of agent-idp, read once from the environment, typed, with its default.
// A missing or malformed setting stops start-up with one line that names it.

export type SigningAlg = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';
export const SIGNING_ALGS: readonly SigningAlg[] = ['RS256', 'PS256', 'ES256', 'EdDSA'];
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface Config {
  port: number;
  host: string;
  publicUrl: string;
  /** PostgreSQL connection string; undefined means the embedded PGlite in dataDir. */
  databaseUrl: string | undefined;
  databasePoolSize: number;
  dataDir: string;
  /** 32 bytes; undefined only in embedded mode, where it is generated into dataDir. */
  keyEncryptionKey: Buffer | undefined;
  keyAlg: SigningAlg;
  keyRotationDays: number;
  accessTokenTtlSeconds: number;
  /** How many actors deep a token exchange chain may go (RFC 8693 `act` nesting). */
  maxDelegationDepth: number;
  defaultAudience: string;
  auditRetentionDays: number;
  bcryptCost: number;
  secretMemorySeconds: number;
  bootstrapAdminClientId: string | undefined;
  bootstrapAdminClientSecret: string | undefined;
  logLevel: LogLevel;
  /** Failed client authentications of one (client id, IP) in a window before it gets 429. */
  authFailureLimit: number;
  /** Failed client authentications of one IP in a window before it gets 429 (agents may share a NAT address). */
  authFailureIpLimit: number;
  authFailureWindowSeconds: number;
  /** Management API requests per second per bearer token, and the burst above it. */
  managementRateLimit: number;
  managementRateBurst: number;
  /** Proxies in front of the service whose X-Forwarded-For is believed (0: the header is ignored). */
  trustProxy: number;
  /** How long a shutdown answers /readyz with 503 before it stops listening, so that load balancers stop sending first. */
  shutdownDelaySeconds: number;
  /** The Prometheus listener's port; undefined when METRICS_PORT=off. */
  metricsPort: number | undefined;
  metricsHost: string;
  /** How long before a credential's expiresAt the credential.expiring_soon event goes out. */
  webhookExpiryWarningDays: number;
  /** The first retry of a failed webhook delivery waits about this long; each further one twice as long. */
  webhookRetryBaseSeconds: number;
  /** An endpoint failing without a success for this long is disabled. */
  webhookDisableAfterHours: number;
  /** http:// webhook URLs are accepted (development); otherwise https only. */
  webhookAllowInsecureUrls: boolean;
  /** Webhooks may reach loopback, private and link-local addresses (development and tests). */
  webhookAllowPrivateTargets: boolean;
  /** How often each chain of the audit log that got events gets a signed checkpoint. */
  auditCheckpointSeconds: number;
  /** Federation (RFC 7523 §2.1): issuers may be http on loopback, and their fetches may reach private addresses (development and tests only). */
  federationAllowInsecureIssuers: boolean;
  /** The deadline of each fetch of a federation issuer's discovery document or JWKS. */
  federationFetchTimeoutMs: number;
  /** Processes serving PORT (node:cluster); 1 is one process, no cluster. More than 1 only on PostgreSQL. */
  workers: number;
}

export class ConfigError extends Error {
  readonly setting: string;

  constructor(setting: string, reason: string) {
    super(`${setting}: ${reason}`);
    this.setting = setting;
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const CLIENT_SECRET = /^aidp_cs_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/;

function read(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function flag(env: Env, name: string): boolean {
  const raw = read(env, name)?.toLowerCase();
  if (raw === undefined || raw === 'false' || raw === '0') return false;
  if (raw === 'true' || raw === '1') return true;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function url(env: Env, name: string, fallback: string, protocols: string[]): string {
  const raw = read(env, name) ?? fallback;
  const parsed = URL.parse(raw);
  if (!parsed || !protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must be a ${protocols.join(' or ')} URL, got "${raw}"`);
  }
  return raw;
}

// Each worker holds DATABASE_POOL_SIZE + 1 connections and a share of the memory; beyond this a
// host is better served by more replicas than by more workers in one.
export const MAX_WORKERS = 64;

function workers(env: Env, databaseUrl: string | undefined, cores: number): number {
  const raw = read(env, 'WORKERS');
  const auto = raw?.toLowerCase() === 'auto';
  if (raw !== undefined && !auto && !/^\d+$/.test(raw))
    throw new ConfigError('WORKERS', `must be a whole number from 1 to ${MAX_WORKERS}, or auto, got "${raw}"`);
  const value = auto ? Math.max(1, Math.min(cores, MAX_WORKERS)) : integer(env, 'WORKERS', 1, 1, MAX_WORKERS);
  if (value > 1 && databaseUrl === undefined) {
    // The embedded database lives inside one process (and locks DATA_DIR): a second cannot open it.
    const asked = auto ? `auto (${value} cores here)` : String(value);
    throw new ConfigError(
      'WORKERS',
      `${asked} needs PostgreSQL: the embedded database (DATABASE_URL unset) serves one process; set DATABASE_URL, or WORKERS=1`,
    );
  }
  return value;
}

export function parseKeyEncryptionKey(raw: string, setting = 'KEY_ENCRYPTION_KEY'): Buffer {
  const bytes = /^[A-Za-z0-9+/_-]+={0,2}$/.test(raw) ? Buffer.from(raw, 'base64') : Buffer.alloc(0);
  if (bytes.length !== 32) {
    throw new ConfigError(setting, 'must be 32 bytes encoded as base64 (for example: openssl rand -base64 32)');
  }
  return bytes;
}

/** `cores`: what WORKERS=auto means (the CPUs this process may use). */
export function loadConfig(env: Env = process.env, cores: number = availableParallelism()): Config {
  const port = integer(env, 'PORT', 3000, 0, 65535);
  const publicUrl = url(env, 'PUBLIC_URL', `http://localhost:${port}`, ['http:', 'https:']).replace(/\/+$/, '');
  const databaseUrl = read(env, 'DATABASE_URL');
  if (databaseUrl !== undefined) url(env, 'DATABASE_URL', databaseUrl, ['postgres:', 'postgresql:']);

  const rawKek = read(env, 'KEY_ENCRYPTION_KEY');
  if (databaseUrl !== undefined && rawKek === undefined) {
    throw new ConfigError('KEY_ENCRYPTION_KEY', 'is required when DATABASE_URL is set (32 bytes, base64)');
  }

  const keyAlg = (read(env, 'KEY_ALG') ?? 'RS256') as SigningAlg;
  if (!SIGNING_ALGS.includes(keyAlg)) {
    throw new ConfigError('KEY_ALG', `must be one of ${SIGNING_ALGS.join(', ')}, got "${keyAlg}"`);
  }

  const logLevel = (read(env, 'LOG_LEVEL') ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be debug, info, warn, error or silent, got "${logLevel}"`);
  }

  const bootstrapAdminClientId = read(env, 'BOOTSTRAP_ADMIN_CLIENT_ID');
  const bootstrapAdminClientSecret = read(env, 'BOOTSTRAP_ADMIN_CLIENT_SECRET');
  if ((bootstrapAdminClientId === undefined) !== (bootstrapAdminClientSecret === undefined)) {
    throw new ConfigError(
      bootstrapAdminClientId === undefined ? 'BOOTSTRAP_ADMIN_CLIENT_ID' : 'BOOTSTRAP_ADMIN_CLIENT_SECRET',
      'BOOTSTRAP_ADMIN_CLIENT_ID and BOOTSTRAP_ADMIN_CLIENT_SECRET are set together or not at all',
    );
  }

  if (bootstrapAdminClientId !== undefined && !isUuid(bootstrapAdminClientId)) {
    throw new ConfigError('BOOTSTRAP_ADMIN_CLIENT_ID', 'must be a UUID (generate a pair with: npm run cli -- bootstrap-credentials)');
  }
  if (bootstrapAdminClientSecret !== undefined && !CLIENT_SECRET.test(bootstrapAdminClientSecret)) {
    throw new ConfigError(
      'BOOTSTRAP_ADMIN_CLIENT_SECRET',
      'must be an agent-idp client secret, aidp_cs_<32 hex>_<43 base64url> (generate a pair with: npm run cli -- bootstrap-credentials)',
    );
  }

  const managementRateLimit = integer(env, 'MANAGEMENT_RATE_LIMIT', 50, 1, 100_000);
  const host = read(env, 'HOST') ?? '0.0.0.0';
  const metricsPort = read(env, 'METRICS_PORT')?.toLowerCase() === 'off' ? undefined : integer(env, 'METRICS_PORT', 9464, 0, 65535);
  const metricsHost = read(env, 'METRICS_HOST') ?? host;
  // Port 0 picks a free port for each listener; any other shared port would fail at start.
  if (metricsPort !== undefined && metricsPort !== 0 && metricsPort === port && metricsHost === host) {
    throw new ConfigError('METRICS_PORT', `must differ from PORT (${port}), or be off`);
  }

  return {
    port,
    host,
    publicUrl,
    databaseUrl,
    databasePoolSize: integer(env, 'DATABASE_POOL_SIZE', 10, 1, 200),
    dataDir: read(env, 'DATA_DIR') ?? './data',
    keyEncryptionKey: rawKek === undefined ? undefined : parseKeyEncryptionKey(rawKek),
    keyAlg,
    keyRotationDays: integer(env, 'KEY_ROTATION_DAYS', 30, 1, 3650),
    accessTokenTtlSeconds: integer(env, 'ACCESS_TOKEN_TTL_SECONDS', 3600, 60, 86400),
    maxDelegationDepth: integer(env, 'MAX_DELEGATION_DEPTH', 4, 1, 10),
    defaultAudience: url(env, 'DEFAULT_AUDIENCE', publicUrl, ['http:', 'https:', 'urn:']),
    auditRetentionDays: integer(env, 'AUDIT_RETENTION_DAYS', 90, 1, 3650),
    bcryptCost: integer(env, 'BCRYPT_COST', 10, 4, 15),
    secretMemorySeconds: integer(env, 'SECRET_MEMORY_SECONDS', 60, 0, 60),
    bootstrapAdminClientId,
    bootstrapAdminClientSecret,
    logLevel,
    authFailureLimit: integer(env, 'AUTH_FAILURE_LIMIT', 10, 1, 10_000),
    authFailureIpLimit: integer(env, 'AUTH_FAILURE_IP_LIMIT', 100, 1, 1_000_000),
    authFailureWindowSeconds: integer(env, 'AUTH_FAILURE_WINDOW_SECONDS', 300, 1, 86_400),
    managementRateLimit,
    managementRateBurst: integer(env, 'MANAGEMENT_RATE_BURST', managementRateLimit * 2, managementRateLimit, 1_000_000),
    trustProxy: integer(env, 'TRUST_PROXY', 0, 0, 10),
    shutdownDelaySeconds: integer(env, 'SHUTDOWN_DELAY_SECONDS', 0, 0, 300),
    metricsPort,
    metricsHost,
    webhookExpiryWarningDays: integer(env, 'WEBHOOK_EXPIRY_WARNING_DAYS', 7, 1, 365),
    webhookRetryBaseSeconds: integer(env, 'WEBHOOK_RETRY_BASE_SECONDS', 10, 1, 3600),
    webhookDisableAfterHours: integer(env, 'WEBHOOK_DISABLE_AFTER_HOURS', 72, 1, 8760),
    webhookAllowInsecureUrls: flag(env, 'WEBHOOK_ALLOW_INSECURE_URLS'),
    webhookAllowPrivateTargets: flag(env, 'WEBHOOK_ALLOW_PRIVATE_TARGETS'),
    auditCheckpointSeconds: integer(env, 'AUDIT_CHECKPOINT_SECONDS', 60, 1, 3600),
    federationAllowInsecureIssuers: flag(env, 'FEDERATION_ALLOW_INSECURE_ISSUERS'),
    federationFetchTimeoutMs: integer(env, 'FEDERATION_FETCH_TIMEOUT_MS', 5000, 100, 30_000),
    workers: workers(env, databaseUrl, cores),
  };
}

import { ConfigError, loadConfig } from './index.ts';

const KEK = Buffer.alloc(32, 7).toString('base64');

describe('loadConfig', () => {
  it('has working defaults for the embedded mode', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      publicUrl: 'http://localhost:3000',
      databaseUrl: undefined,
      dataDir: './data',
      keyEncryptionKey: undefined,
      keyAlg: 'RS256',
      keyRotationDays: 30,
      accessTokenTtlSeconds: 3600,
      maxDelegationDepth: 4,
      defaultAudience: 'http://localhost:3000',
      auditRetentionDays: 90,
      bcryptCost: 10,
      secretMemorySeconds: 60,
      authFailureLimit: 10,
      authFailureIpLimit: 100,
      authFailureWindowSeconds: 300,
      managementRateLimit: 50,
      managementRateBurst: 100,
      trustProxy: 0,
      shutdownDelaySeconds: 0,
      metricsPort: 9464,
      metricsHost: '0.0.0.0',
      webhookExpiryWarningDays: 7,
      webhookRetryBaseSeconds: 10,
      webhookDisableAfterHours: 72,
      webhookAllowInsecureUrls: false,
      webhookAllowPrivateTargets: false,
      auditCheckpointSeconds: 60,
      workers: 1,
    });
  });

  it('reads WORKERS on PostgreSQL: a number, or auto for the cores this process may use', () => {
    const pg = { DATABASE_URL: 'postgres://db/idp', KEY_ENCRYPTION_KEY: KEK };
    expect(loadConfig(pg).workers).toBe(1);
    expect(loadConfig({ ...pg, WORKERS: '4' }).workers).toBe(4);
    expect(loadConfig({ ...pg, WORKERS: '64' }).workers).toBe(64);
    expect(loadConfig({ ...pg, WORKERS: 'auto' }, 6).workers).toBe(6);
    expect(loadConfig({ ...pg, WORKERS: 'AUTO' }, 2).workers).toBe(2);
    // A very large host gets the bound, not a process per core.
    expect(loadConfig({ ...pg, WORKERS: 'auto' }, 192).workers).toBe(64);
  });

  it('takes WORKERS=1 (or auto on one core) on the embedded database, and refuses more with one line saying why', () => {
    expect(loadConfig({ WORKERS: '1' }).workers).toBe(1);
    expect(loadConfig({ WORKERS: 'auto' }, 1).workers).toBe(1);
    expect(() => loadConfig({ WORKERS: '2' })).toThrow(
      new ConfigError('WORKERS', '2 needs PostgreSQL: the embedded database (DATABASE_URL unset) serves one process; set DATABASE_URL, or WORKERS=1'),
    );
    expect(() => loadConfig({ WORKERS: 'auto' }, 4)).toThrow('WORKERS: auto (4 cores here) needs PostgreSQL');
  });

  it('reads the webhook settings', () => {
    expect(
      loadConfig({
        WEBHOOK_EXPIRY_WARNING_DAYS: '14',
        WEBHOOK_RETRY_BASE_SECONDS: '1',
        WEBHOOK_DISABLE_AFTER_HOURS: '24',
        WEBHOOK_ALLOW_INSECURE_URLS: 'true',
        WEBHOOK_ALLOW_PRIVATE_TARGETS: '1',
      }),
    ).toMatchObject({
      webhookExpiryWarningDays: 14,
      webhookRetryBaseSeconds: 1,
      webhookDisableAfterHours: 24,
      webhookAllowInsecureUrls: true,
      webhookAllowPrivateTargets: true,
    });
    expect(loadConfig({ AUDIT_CHECKPOINT_SECONDS: '1' }).auditCheckpointSeconds).toBe(1);
    expect(loadConfig({ WEBHOOK_ALLOW_INSECURE_URLS: 'false', WEBHOOK_ALLOW_PRIVATE_TARGETS: '0' })).toMatchObject({
      webhookAllowInsecureUrls: false,
      webhookAllowPrivateTargets: false,
    });
  });

  it('reads the production settings: proxies, drain, metrics', () => {
    expect(loadConfig({ TRUST_PROXY: '2', SHUTDOWN_DELAY_SECONDS: '15', METRICS_PORT: '9100', HOST: '10.0.0.5' })).toMatchObject({
      trustProxy: 2,
      shutdownDelaySeconds: 15,
      metricsPort: 9100,
      metricsHost: '10.0.0.5',
    });
    expect(loadConfig({ METRICS_PORT: 'off' }).metricsPort).toBeUndefined();
    expect(loadConfig({ METRICS_PORT: 'OFF' }).metricsPort).toBeUndefined();
    expect(loadConfig({ METRICS_HOST: '127.0.0.1' }).metricsHost).toBe('127.0.0.1');
    // On another interface the same port is free.
    expect(loadConfig({ PORT: '9464', METRICS_HOST: '127.0.0.1' }).metricsPort).toBe(9464);
    expect(loadConfig({ PORT: '0', METRICS_PORT: '0' })).toMatchObject({ port: 0, metricsPort: 0 });
  });

  it.each([
    [{ DATABASE_URL: 'postgres://db/idp' }, 'KEY_ENCRYPTION_KEY'],
    [{ DATABASE_URL: 'postgres://db/idp', KEY_ENCRYPTION_KEY: 'c2hvcnQ=' }, 'KEY_ENCRYPTION_KEY'],
    [{ DATABASE_URL: 'mysql://db/idp', KEY_ENCRYPTION_KEY: KEK }, 'DATABASE_URL'],
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ PUBLIC_URL: 'localhost:3000' }, 'PUBLIC_URL'],
    [{ KEY_ALG: 'HS256' }, 'KEY_ALG'],
    [{ KEY_ALG: 'none' }, 'KEY_ALG'],
    [{ ACCESS_TOKEN_TTL_SECONDS: '10' }, 'ACCESS_TOKEN_TTL_SECONDS'],
    [{ MAX_DELEGATION_DEPTH: '0' }, 'MAX_DELEGATION_DEPTH'],
    [{ MAX_DELEGATION_DEPTH: '11' }, 'MAX_DELEGATION_DEPTH'],
    [{ BCRYPT_COST: '2' }, 'BCRYPT_COST'],
    [{ SECRET_MEMORY_SECONDS: '600' }, 'SECRET_MEMORY_SECONDS'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ AUTH_FAILURE_LIMIT: '0' }, 'AUTH_FAILURE_LIMIT'],
    [{ AUTH_FAILURE_IP_LIMIT: 'many' }, 'AUTH_FAILURE_IP_LIMIT'],
    [{ AUTH_FAILURE_WINDOW_SECONDS: '-5' }, 'AUTH_FAILURE_WINDOW_SECONDS'],
    [{ MANAGEMENT_RATE_LIMIT: '0' }, 'MANAGEMENT_RATE_LIMIT'],
    [{ MANAGEMENT_RATE_LIMIT: '10', MANAGEMENT_RATE_BURST: '5' }, 'MANAGEMENT_RATE_BURST'],
    [{ TRUST_PROXY: 'yes' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: 'true' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '-1' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '11' }, 'TRUST_PROXY'],
    [{ SHUTDOWN_DELAY_SECONDS: '1.5' }, 'SHUTDOWN_DELAY_SECONDS'],
    [{ SHUTDOWN_DELAY_SECONDS: '301' }, 'SHUTDOWN_DELAY_SECONDS'],
    [{ WEBHOOK_EXPIRY_WARNING_DAYS: '0' }, 'WEBHOOK_EXPIRY_WARNING_DAYS'],
    [{ AUDIT_CHECKPOINT_SECONDS: '0' }, 'AUDIT_CHECKPOINT_SECONDS'],
    [{ AUDIT_CHECKPOINT_SECONDS: '3601' }, 'AUDIT_CHECKPOINT_SECONDS'],
    [{ WEBHOOK_RETRY_BASE_SECONDS: '0.5' }, 'WEBHOOK_RETRY_BASE_SECONDS'],
    [{ WEBHOOK_DISABLE_AFTER_HOURS: 'never' }, 'WEBHOOK_DISABLE_AFTER_HOURS'],
    [{ WEBHOOK_ALLOW_INSECURE_URLS: 'yes' }, 'WEBHOOK_ALLOW_INSECURE_URLS'],
    [{ WEBHOOK_ALLOW_PRIVATE_TARGETS: 'on' }, 'WEBHOOK_ALLOW_PRIVATE_TARGETS'],
    [{ DATABASE_URL: 'postgres://db/idp', KEY_ENCRYPTION_KEY: KEK, WORKERS: '0' }, 'WORKERS'],
    [{ DATABASE_URL: 'postgres://db/idp', KEY_ENCRYPTION_KEY: KEK, WORKERS: '65' }, 'WORKERS'],
    [{ DATABASE_URL: 'postgres://db/idp', KEY_ENCRYPTION_KEY: KEK, WORKERS: '1.5' }, 'WORKERS'],
    [{ DATABASE_URL: 'postgres://db/idp', KEY_ENCRYPTION_KEY: KEK, WORKERS: 'all' }, 'WORKERS'],
    [{ WORKERS: '3' }, 'WORKERS'],
    [{ METRICS_PORT: 'on' }, 'METRICS_PORT'],
    [{ METRICS_PORT: '70000' }, 'METRICS_PORT'],
    [{ METRICS_PORT: '3000' }, 'METRICS_PORT'],
    [{ BOOTSTRAP_ADMIN_CLIENT_ID: '5b1f0b8e-8d55-4b7e-9a57-0b1d2f3a4c5d' }, 'BOOTSTRAP_ADMIN_CLIENT_SECRET'],
    [{ BOOTSTRAP_ADMIN_CLIENT_ID: 'admin', BOOTSTRAP_ADMIN_CLIENT_SECRET: 'secret' }, 'BOOTSTRAP_ADMIN_CLIENT_ID'],
    [{ BOOTSTRAP_ADMIN_CLIENT_ID: '5b1f0b8e-8d55-4b7e-9a57-0b1d2f3a4c5d', BOOTSTRAP_ADMIN_CLIENT_SECRET: 'hunter2' }, 'BOOTSTRAP_ADMIN_CLIENT_SECRET'],
  ])('stops with one line naming the setting: %j', (env, setting) => {
    let error: unknown;
    try {
      loadConfig(env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).setting).toBe(setting);
    expect((error as Error).message.startsWith(`${setting}: `)).toBe(true);
    expect((error as Error).message).not.toContain('\n');
    // A rejected secret value is never echoed back.
    expect((error as Error).message).not.toContain('hunter2');
  });

  it('reads the federation settings: insecure issuers off by default, true or false only', () => {
    expect(loadConfig({})).toMatchObject({ federationAllowInsecureIssuers: false, federationFetchTimeoutMs: 5000 });
    expect(loadConfig({ FEDERATION_ALLOW_INSECURE_ISSUERS: 'TRUE', FEDERATION_FETCH_TIMEOUT_MS: '300' })).toMatchObject({
      federationAllowInsecureIssuers: true,
      federationFetchTimeoutMs: 300,
    });
    expect(loadConfig({ FEDERATION_ALLOW_INSECURE_ISSUERS: 'false' }).federationAllowInsecureIssuers).toBe(false);
    expect(() => loadConfig({ FEDERATION_ALLOW_INSECURE_ISSUERS: 'yes' })).toThrow('FEDERATION_ALLOW_INSECURE_ISSUERS: must be true or false, got "yes"');
    expect(() => loadConfig({ FEDERATION_FETCH_TIMEOUT_MS: '50' })).toThrow(ConfigError);
  });

  it('takes PostgreSQL with a 32-byte key', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://u@db:5432/idp', KEY_ENCRYPTION_KEY: KEK, PUBLIC_URL: 'https://idp.example.com/' });
    expect(config.keyEncryptionKey).toEqual(Buffer.alloc(32, 7));
    expect(config.publicUrl).toBe('https://idp.example.com');
  });
});

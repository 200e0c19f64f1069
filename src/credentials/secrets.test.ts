import { credentialIdOf, generateSecret, secretDigest, SECRET_PREFIX } from './secrets.ts';
import { SecretMemory } from './secret-memory.ts';

const CREDENTIAL_ID = '0f8e4b3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b';

describe('client secrets', () => {
  it('carry a scannable prefix, the credential id and 256 random bits', () => {
    const secret = generateSecret(CREDENTIAL_ID);
    expect(secret.startsWith(SECRET_PREFIX)).toBe(true);
    expect(secret).toMatch(/^aidp_cs_0f8e4b3a1c2d4e5f8a9b0c1d2e3f4a5b_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(secret.split('_').slice(3).join('_'), 'base64url')).toHaveLength(32);
    expect(generateSecret(CREDENTIAL_ID)).not.toBe(secret);
  });

  it('name their credential, and nothing else parses', () => {
    expect(credentialIdOf(generateSecret(CREDENTIAL_ID))).toBe(CREDENTIAL_ID);
    for (const junk of ['', 'aidp_cs_', 'secret', `aidp_cs_${'g'.repeat(32)}_${'a'.repeat(43)}`, generateSecret(CREDENTIAL_ID) + 'x']) {
      expect(credentialIdOf(junk)).toBeUndefined();
    }
  });

  it('are remembered by digest, never as themselves', () => {
    const secret = generateSecret(CREDENTIAL_ID);
    expect(secretDigest(secret)).not.toContain(secret.slice(-43));
    expect(secretDigest(secret)).toBe(secretDigest(secret));
  });
});

describe('SecretMemory', () => {
  it('recalls a verified secret until its time is up, for its own credential only', () => {
    let now = 1_000_000;
    const memory = new SecretMemory(60, 100, () => now);
    memory.remember('digest', CREDENTIAL_ID, '$2b$hash');
    expect(memory.recall('digest', CREDENTIAL_ID)).toBe('$2b$hash');
    expect(memory.recall('digest', 'another-credential')).toBeUndefined();
    memory.remember('digest', CREDENTIAL_ID, '$2b$hash');
    now += 60_000;
    expect(memory.recall('digest', CREDENTIAL_ID)).toBeUndefined();
    expect(memory.size).toBe(0);
  });

  it('asks for a refresh in the last quarter of an entry only', () => {
    let now = 1_000_000;
    const memory = new SecretMemory(60, 100, () => now);
    expect(memory.refreshDue('digest')).toBe(false);
    memory.remember('digest', CREDENTIAL_ID, '$2b$hash');
    now += 44_000;
    expect(memory.refreshDue('digest')).toBe(false);
    now += 1_000;
    expect(memory.refreshDue('digest')).toBe(true);
    memory.remember('digest', CREDENTIAL_ID, '$2b$hash');
    expect(memory.refreshDue('digest')).toBe(false);
  });

  it('forgets a credential at once, and stays within its size', () => {
    const memory = new SecretMemory(60, 2);
    memory.remember('a', 'c1', 'h');
    memory.remember('b', 'c2', 'h');
    memory.remember('c', 'c2', 'h');
    expect(memory.size).toBe(2);
    expect(memory.recall('a', 'c1')).toBeUndefined();
    memory.forgetCredential('c2');
    expect(memory.size).toBe(0);
  });

  it('remembers nothing when its lifetime is zero', () => {
    const memory = new SecretMemory(0);
    memory.remember('a', 'c1', 'h');
    expect(memory.recall('a', 'c1')).toBeUndefined();
  });
});

describe('SecretMemory eviction', () => {
  it('evicts the least recently used entry, not a busy one', () => {
    const memory = new SecretMemory(60, 2);
    memory.remember('busy', 'c1', 'h');
    memory.remember('idle', 'c2', 'h');
    expect(memory.recall('busy', 'c1')).toBe('h');
    memory.remember('new', 'c3', 'h');
    expect(memory.recall('busy', 'c1')).toBe('h');
    expect(memory.recall('idle', 'c2')).toBeUndefined();
  });
});

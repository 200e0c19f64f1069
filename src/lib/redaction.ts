// What must never be written down: one list for the log and the audit log alike.

/** The private members of a JWK (RSA d, p, q, dp, dq, qi; EC and OKP d; k of a symmetric key). */
export const JWK_PRIVATE_MEMBERS: readonly string[] = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

/** Keys whose value is dropped wherever they appear, however deep: credentials, tokens, private keys. */
export const SECRET_KEY = new RegExp(
  '^(authorization|proxy[-_]?authorization|cookie|set[-_]?cookie|client[-_]?secret|secret|password|passwd|token|access[-_]?token|refresh[-_]?token|id[-_]?token|private[-_]?key|private[-_]?key[-_]?enc|' +
    JWK_PRIVATE_MEMBERS.join('|') +
    ')$',
  'i',
);

// Our client secrets, webhook signing secrets (whsec_ + base64 of 32 bytes) and JWTs, should one end up inside a string.
const SECRET_PATTERNS = [/aidp_cs_[0-9a-f]{32}_[A-Za-z0-9_-]{43}/g, /whsec_[A-Za-z0-9+/]{43}=/g, /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g];

export const REDACTED = '[REDACTED]';

export function redactString(value: string): string {
  // Every pattern starts with one of these: a string without them (nearly all) is not scanned three times.
  if (!value.includes('aidp_cs_') && !value.includes('whsec_') && !value.includes('eyJ')) return value;
  return SECRET_PATTERNS.reduce((s, re) => s.replace(re, REDACTED), value);
}

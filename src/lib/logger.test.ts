import { createLogger, redact } from './logger.ts';

describe('logger', () => {
  it('redacts secret-bearing fields wherever they are, and our secrets and JWTs inside strings', () => {
    const lines: string[] = [];
    const log = createLogger('info', (l) => lines.push(l));
    const secret = `aidp_cs_${'a'.repeat(32)}_${'B'.repeat(43)}`;
    log.info(`client used ${secret}`, {
      headers: { authorization: 'Basic abc', 'x-other': 'kept' },
      body: { client_secret: 'x', nested: [{ clientSecret: 'y', privateKey: 'z', access_token: 'w' }] },
      note: 'token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln here',
      err: new Error(`failed for ${secret}`),
    });
    expect(lines).toHaveLength(1);
    const line = lines[0];
    for (const leaked of [secret, 'Basic abc', '"y"', '"z"', '"w"', 'eyJhbGciOiJSUzI1NiJ9']) expect(line).not.toContain(leaked);
    expect(JSON.parse(line)).toMatchObject({ level: 'info', headers: { 'x-other': 'kept' } });
  });

  it('respects the level', () => {
    const lines: string[] = [];
    const log = createLogger('warn', (l) => lines.push(l));
    log.info('no');
    log.warn('yes');
    expect(lines).toHaveLength(1);
    expect(redact(5)).toBe(5);
    expect([log.enabled!('debug'), log.enabled!('info'), log.enabled!('warn'), log.enabled!('error')]).toEqual([false, false, true, true]);
  });

  it('puts the base fields on every line, after time and level', () => {
    const lines: string[] = [];
    const log = createLogger('info', (l) => lines.push(l), { pid: 4242 });
    log.info('one', { url: 'http://x' });
    log.error('two');
    expect(lines.map((l) => Object.keys(JSON.parse(l)))).toEqual([
      ['time', 'level', 'pid', 'msg', 'url'],
      ['time', 'level', 'pid', 'msg'],
    ]);
    expect(JSON.parse(lines[0])).toMatchObject({ pid: 4242, msg: 'one' });
  });
});

import { isNonPublicAddress } from '../http/outbound.ts';
import { urlProblem } from './webhook-target.ts';

describe('isNonPublicAddress', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.10.0.5', true],
    ['10.1.2.3', true],
    ['172.16.0.1', true],
    ['172.31.255.255', true],
    ['192.168.1.1', true],
    ['169.254.169.254', true],
    ['100.64.0.1', true],
    ['0.0.0.0', true],
    ['224.0.0.1', true],
    ['255.255.255.255', true],
    ['::1', true],
    ['::', true],
    ['fe80::1', true],
    ['fd12:3456::1', true],
    ['::ffff:10.0.0.1', true],
    ['::ffff:127.0.0.1', true],
    ['64:ff9b::a00:1', true],
    ['not an address', true],
    ['8.8.8.8', false],
    ['172.32.0.1', false],
    ['93.184.215.14', false],
    ['2606:4700::1111', false],
    ['::ffff:8.8.8.8', false],
  ])('%s → %s', (address, expected) => {
    expect(isNonPublicAddress(address)).toBe(expected);
  });
});

describe('urlProblem', () => {
  const strict = { allowInsecureUrls: false, allowPrivateTargets: false };
  const lax = { allowInsecureUrls: true, allowPrivateTargets: true };

  it('accepts a public https URL, and a host name whatever it resolves to (that is checked at send time)', () => {
    expect(urlProblem('https://hooks.example.com/idp?x=1', strict)).toBeUndefined();
    expect(urlProblem('https://localhost:8443/hook', strict)).toBeUndefined();
  });

  it('refuses http unless insecure URLs are allowed', () => {
    expect(urlProblem('http://hooks.example.com/', strict)).toBe('must be an https URL');
    expect(urlProblem('http://hooks.example.com/', lax)).toBeUndefined();
    expect(urlProblem('ftp://hooks.example.com/', lax)).toBe('must be an http or https URL');
  });

  it('refuses a non-public IP address unless private targets are allowed', () => {
    for (const url of ['https://127.0.0.1/', 'https://10.0.0.8:8443/x', 'https://[::1]/', 'https://169.254.169.254/latest', 'https://[::ffff:192.168.0.1]/']) {
      expect({ url, problem: urlProblem(url, strict) }).toEqual({ url, problem: 'must not point to a loopback, private or link-local address' });
      expect(urlProblem(url, lax)).toBeUndefined();
    }
    expect(urlProblem('https://8.8.8.8/', strict)).toBeUndefined();
  });

  it('refuses credentials in the URL, fragments and what is no URL', () => {
    expect(urlProblem('https://u:p@hooks.example.com/', strict)).toBe('must not hold a user name or password');
    expect(urlProblem('https://hooks.example.com/#x', strict)).toBe('must not hold a fragment');
    expect(urlProblem('hooks.example.com', strict)).toBe('must be an absolute URL');
  });
});

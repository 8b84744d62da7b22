import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_DETECTORS, Scanner } from '../../service/redaction/index.ts';
import { cardBrand, ibanValid, jwtHeaderValid, luhnValid, ssnValid } from '../../service/redaction/validators.ts';

const scanner = new Scanner(BUILTIN_DETECTORS);
const found = (text: string): string[] => scanner.scan(text).map((f) => `${f.detector.name}:${text.slice(f.start, f.end)}`);

test('validators', () => {
  const cases: [string, boolean, boolean][] = [
    // [digits, luhn, brand known]
    ['4111111111111111', true, true],
    ['4111111111111112', false, true],
    ['378282246310005', true, true],
    ['5555555555554444', true, true],
    ['6011111111111117', true, true],
    ['3530111333300000', true, true],
    ['1234567812345670', true, false],
  ];
  for (const [d, luhn, brand] of cases) {
    assert.equal(luhnValid(d), luhn, d);
    assert.equal(cardBrand(d) !== undefined, brand, d);
  }
  assert.equal(ibanValid('DE89370400440532013000'), true);
  assert.equal(ibanValid('DE89370400440532013001'), false);
  assert.equal(ibanValid('GB82WEST12345698765432'), true);
  assert.equal(ibanValid('GB82WEST1234569876543'), false, 'wrong length');
  assert.equal(ibanValid('US82WEST12345698765432'), false, 'not an IBAN country');
  for (const [a, g, s, ok] of [['123', '45', '6789', true], ['000', '45', '6789', false], ['666', '45', '6789', false], ['900', '45', '6789', false], ['123', '00', '6789', false], ['123', '45', '0000', false]] as const) {
    assert.equal(ssnValid(a, g, s), ok, `${a}-${g}-${s}`);
  }
  assert.equal(jwtHeaderValid(Buffer.from('{"alg":"HS256"}').toString('base64url')), true);
  assert.equal(jwtHeaderValid(Buffer.from('{"typ":"JWT"}').toString('base64url')), false);
  assert.equal(jwtHeaderValid('bm90IGpzb24'), false);
});

test('documented decisions: what is and is not PII', () => {
  const table: [string, string[]][] = [
    ['v1.2.3.4 and version 1.2.3.4 and Chrome/120.0.0.1 and 1.2.3.4-beta', []],
    ['host 10.0.0.1.', ['ipv4:10.0.0.1']],
    ['order 4155552671 and ts 1712345678', []],
    ['tel: 4155552671', ['phone:4155552671']],
    ['ssn 123456789', ['ssn:123456789']],
    ['order 123456789', []],
    ['git sha 3f786850e387550fdab836ed7e6dc881de23001b near aws', []],
    ['aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', ['aws_secret_key:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY']],
    ['wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY without context', []],
    ['uuid 123e4567-e89b-12d3-a456-426614174000', []],
    ['::1 and :: alone', ['ipv6:::1']],
    ['gw fe80::1', ['ipv6:fe80::1']],
    ['-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----', []],
    ['icon@2x.png git@github.com:o/r.git', []],
  ];
  for (const [text, expected] of table) assert.deepEqual(found(text), expected, text);
});

test('look-alike characters do not hide PII: zero-width, full-width, NBSP, Unicode dashes', () => {
  const table: [string, string][] = [
    ['j\u200bane@exam\u200dple.com', 'email'],
    ['４１１１ １１１１ １１１１ １１１１', 'credit_card'],
    ['4111\u00a01111\u00a01111\u00a01111', 'credit_card'],
    ['123\u2011 45\u2013 6789'.replace(/ /g, ''), 'ssn'],
    ['+1\u00a0415\u00a0555\u00a02671', 'phone'],
  ];
  for (const [text, detector] of table) {
    const f = scanner.scan(text);
    assert.equal(f.length, 1, text);
    assert.equal(f[0].detector.name, detector);
    assert.deepEqual([f[0].start, f[0].end], [0, text.length], 'span covers the original characters');
  }
});

test('overlapping matches merge into one span named by the strongest detector', () => {
  // An IPv4-mapped IPv6 address contains an IPv4 address; a JWT-looking token inside a private key block.
  const v6 = '::ffff:192.0.2.128';
  assert.deepEqual(found(`addr ${v6} ok`), [`ipv6:${v6}`]);
  const pem = '-----BEGIN PRIVATE KEY-----\neyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc\n-----END PRIVATE KEY-----';
  assert.deepEqual(found(pem), [`private_key:${pem}`]);
});

test('unterminated private key block is redacted to the end of the string', () => {
  const text = 'paste: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU';
  assert.deepEqual(found(text), [`private_key:${text.slice(7)}`]);
});

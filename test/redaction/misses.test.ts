// Issue #11 item 16: values the detectors used to miss. Each case names the exact span that must be found; the
// streaming cases check that no chunking lets any part of the value out before it is known.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_DETECTORS, Scanner, compileRedactor } from '../../service/redaction/index.ts';
import { awsSecretKey } from '../../service/redaction/detectors.ts';

const scanner = new Scanner(BUILTIN_DETECTORS);
const found = (text: string): string[] => scanner.scan(text).map((f) => `${f.detector.name}:${text.slice(f.start, f.end)}`);

function table(rows: [string, string[]][]): void {
  for (const [text, expected] of rows) assert.deepEqual(found(text), expected, JSON.stringify(text));
}

test('phone numbers in national formats', () => {
  table([
    ['Telefon: 030/12345678', ['phone:030/12345678']],
    ['erreichbar unter 0171 / 1234567', ['phone:0171 / 1234567']],
    ['Büro 089/123 456 78.', ['phone:089/123 456 78']],
    ['UK office 02079460958', ['phone:02079460958']],
    ['mobile: 07700900123', ['phone:07700900123']],
    ['appelez le 0612345678', ['phone:0612345678']],
    ['India 98765 43210', ['phone:98765 43210']],
    ['whatsapp 91234-56789', ['phone:91234-56789']],
    ['SP (11) 91234-5678', ['phone:(11) 91234-5678']],
    ['Rio 21 3456-7890', ['phone:21 3456-7890']],
    ['Madrid 912 345 678', ['phone:912 345 678']],
    ['móvil 612 34 56 78', ['phone:612 34 56 78']],
    ['oficina 91 234 56 78', ['phone:91 234 56 78']],
  ]);
});

test('bare digit runs after phone words in other languages', () => {
  table([
    ['Meine Telefonnummer ist 4155552671', ['phone:4155552671']],
    ['Handy: 15123456789', ['phone:15123456789']],
    ['mon numéro de téléphone est 4155552671', ['phone:4155552671']],
    ['llámame al 4155552671', ['phone:4155552671']],
    ['meu celular é 4155552671', ['phone:4155552671']],
    ['cellulare 3471234567', ['phone:3471234567']],
    ['телефон 84951234567', ['phone:84951234567']],
    ['电话：13812345678', ['phone:13812345678']],
    ['携帯 09012345678', ['phone:09012345678']],
  ]);
});

test('national-format look-alikes stay', () => {
  table([
    ['ISBN 978-3-16-148410-0 and 0-306-40615-2', []],
    ['on 05/06/2024 and 2024/05/06', []],
    ['price €912 345 678 and 612 345 678 EUR', []],
    ['zip 90210-1234', []],
    ['ratio 1/1234567', []],
    ['build 0.1234567890', []],
    ['order #00123456789', []],
  ]);
});

test('hard-wrapped values: IBAN, JWT, API keys', () => {
  const jwt =
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0\n  IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
  const key = 'sk-proj-ogFhLwHiGLCnBGoDV0MG_7awidCW0W7\r\nDwVWmtKqc5d43QVkFGz9lriPuvyPTT-9dKW5eddkckvSj6X4NCq';
  const gh = 'ghp_wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO\n0pINUx';
  table([
    ['IBAN DE89 3704 0044\n0532 0130 00 thanks', ['iban:DE89 3704 0044\n0532 0130 00']],
    ['IBAN DE8937040044053\n    2013000', ['iban:DE8937040044053\n    2013000']],
    [`Bearer ${jwt} end`, [`jwt:${jwt}`]],
    [`OPENAI_API_KEY=${key}\nnext line`, [`openai_key:${key}`]],
    [`token ${gh}`, [`github_token:${gh}`]],
  ]);
});

test('wrapped-line joining does not glue ordinary prose into secrets', () => {
  table([
    ['The configuration management\nimplementation of sk-learn is\nnot a key.', []],
    ['internationalization\nlocalization aws', []],
  ]);
});

test('an AWS secret after a second AWS word that lies inside the first word\'s window', () => {
  const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
  // `aws iam create-access-key` output: "aws" opens a 200-char window; "AKIA…" and "SecretAccessKey" fall inside
  // it while the secret itself falls just past it. Every padding moves the boundary across the layout.
  for (let pad = 0; pad <= 60; pad += 3) {
    const text =
      `$ aws iam create-access-key --user-name Bob\n{\n    "AccessKey": {\n        "UserName": "Bob",\n` +
      `        "Status": "Active",\n${' '.repeat(pad)}"CreateDate": "2015-03-09",\n` +
      `        "AccessKeyId": "AKIAIOSFODNN7EXAMPLE",\n "SecretAccessKey": "${secret}"\n    }\n}`;
    const out: { start: number; end: number }[] = [];
    awsSecretKey.find(text, out);
    assert.deepEqual(out.map((s) => text.slice(s.start, s.end)), [secret], `pad ${pad}`);
  }
});

test('IPv6 loopback and bracketed addresses with ports', () => {
  table([
    ['listen on ::1 port 80', ['ipv6:::1']],
    ['curl http://[::1]:8080/health', ['ipv6:::1']],
    ['peer [2001:db8::ff00:42:8329]:443 closed', ['ipv6:2001:db8::ff00:42:8329']],
    ['std::vector<int> and Foo::Bar and a::b', []],
  ]);
});

test('SSN and card numbers written with dots; dash-grouped IBANs', () => {
  table([
    ['SSN 123.45.6789', ['ssn:123.45.6789']],
    ['card 4111.1111.1111.1111 exp 12/27', ['credit_card:4111.1111.1111.1111']],
    ['IBAN DE89-3704-0044-0532-0130-00.', ['iban:DE89-3704-0044-0532-0130-00']],
    ['GB82-WEST-1234-5698-7654-32', ['iban:GB82-WEST-1234-5698-7654-32']],
    ['ip 192.168.1.1 and 1.2.3.4567', ['ipv4:192.168.1.1']],
    ['DE89-3704-0044-0532-0130-01 (bad checksum)', []],
  ]);
});

test('emails with invisible characters, IDN domains and small/full-width at signs', () => {
  table([
    ['mail jane\u2063.doe@example.com', ['email:jane\u2063.doe@example.com']],
    ['mail ja\u180Ene@exa\u034Fmple.com', ['email:ja\u180Ene@exa\u034Fmple.com']],
    ['mail jane\u200E@example.com\u202C', ['email:jane\u200E@example.com']],
    ['jane\uFE6Bexample.com', ['email:jane\uFE6Bexample.com']],
    ['jane\uFF20example\u3002com', ['email:jane\uFF20example\u3002com']],
    ['jane@münchen.de', ['email:jane@münchen.de']],
    ['иван@пример.рф', ['email:иван@пример.рф']],
    ['用户@例子.广告', ['email:用户@例子.广告']],
    ['邮箱jane@example.com请回复', ['email:jane@example.com']],
    ['jane@xn--mnchen-3ya.de', ['email:jane@xn--mnchen-3ya.de']],
  ]);
});

test('digits in other scripts', () => {
  table([
    ['بطاقة ٤١١١ ١١١١ ١١١١ ١١١١', ['credit_card:٤١١١ ١١١١ ١١١١ ١١١١']],
    ['SSN ۱۲۳-۴۵-۶۷۸۹', ['ssn:۱۲۳-۴۵-۶۷۸۹']],
    ['फ़ोन ९८७६५ ४३२१०', ['phone:९८७६५ ४३२१०']],
    ['card 𝟒𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏 ok', ['credit_card:𝟒𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏']],
    ['call 𝟒𝟏𝟓-𝟓𝟓𝟓-𝟐𝟔𝟕𝟏', ['phone:𝟒𝟏𝟓-𝟓𝟓𝟓-𝟐𝟔𝟕𝟏']],
    ['السنة ٢٠٢٤ والعدد ١٢٣', []],
  ]);
});

test('URL-encoded and base64 text inside a string', () => {
  const b64 = Buffer.from('contact jane.doe@example.com please').toString('base64');
  const b64url = Buffer.from('ssn: 123-45-6789 ok??>').toString('base64url');
  table([
    ['GET /signup?email=jane.doe%40example.com&x=1', ['email:jane.doe%40example.com']],
    ['q=%2B1%20415%20555%202671', ['phone:%2B1%20415%20555%202671']],
    [`note: ${b64} end`, [`email:${b64}`]],
    [`id ${b64url}`, [`ssn:${b64url}`]],
    // Base64 of text without PII, of binary, hashes and long identifiers: nothing.
    [`hello ${Buffer.from('just a friendly hello world').toString('base64')}`, []],
    ['sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', []],
    ['thisIsAVeryLongCamelCaseIdentifierName', []],
    ['100%25 done, 50% off', []],
  ]);
});

test('the same value in another script or encoding gets the same placeholder', () => {
  const r = compileRedactor([{ source: 't/pii', detectors: ['pii'], action: 'mask', responses: false }]);
  const { text } = r.redactText('a 4111 1111 1111 1111 b ٤١١١ ١١١١ ١١١١ ١١١١ c jane@example.com d jane%40example.com');
  assert.equal(text, 'a [CREDIT_CARD_1] b [CREDIT_CARD_1] c [EMAIL_1] d [EMAIL_1]');
  // Two different cards in Arabic-Indic digits are two values (folding before normalizing keeps them apart).
  const two = r.redactText('٤١١١ ١١١١ ١١١١ ١١١١ and ٥٥٥٥ ٥٥٥٥ ٥٥٥٥ ٤٤٤٤').text;
  assert.equal(two, '[CREDIT_CARD_1] and [CREDIT_CARD_2]');
});

test('base64 text documents are redacted and re-encoded; binary payloads are left byte-identical', () => {
  const r = compileRedactor([{ source: 't/all', detectors: ['*'], action: 'mask', responses: false }]);
  const doc = 'Customer record\nEmail: jane.doe@example.com\nPhone: +1 415 555 2671\nSSN 123-45-6789\n';
  const b64 = Buffer.from(doc).toString('base64');
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='.repeat(3);
  const body = {
    model: 'm',
    messages: [
      {
        role: 'user',
        content: [
          { type: 'document', source: { type: 'base64', media_type: 'text/plain', data: b64 } },
          { type: 'file', file: { filename: 'a.txt', file_data: `data:text/plain;base64,${b64}` } },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
        ],
      },
    ],
  };
  const { body: out, report } = r.redactRequest(body);
  const parts = (out.messages as { content: Record<string, Record<string, string>>[] }[])[0].content;
  const expected = 'Customer record\nEmail: [EMAIL_1]\nPhone: [PHONE_1]\nSSN [SSN_1]\n';
  assert.equal(Buffer.from(parts[0].source.data, 'base64').toString(), expected);
  assert.equal(parts[1].file.file_data, `data:text/plain;base64,${Buffer.from(expected).toString('base64')}`);
  assert.equal(parts[2].source.data, png);
  assert.equal(parts[3].image_url.url, `data:image/png;base64,${png}`);
  assert.equal(report.counts.email, 2);
  assert.ok(report.findings.every((f) => f.path.endsWith('[base64]')));
});

test('streaming: no chunking releases any part of a wrapped, obfuscated or encoded value', () => {
  const r = compileRedactor([{ source: 't/all', detectors: ['*'], action: 'mask', responses: true }]);
  const out = r.outputTransform()!;
  const cases: [string, string][] = [
    ['key sk-proj-ogFhLwHiGLCnBGoDV0MG_7awidCW0W7DwVWmtKqc5d43Q\nVkFGz9lriPuvyPTT-9dKW5eddkckvSj6X4NCq ok', 'VkFGz9lriPuvyPTT'],
    ['key sk-proj-ogFhLwHiGLCnBGoDV0MG_7awidCW0W7DwVWmtKqc5d43Q\nVkFGz9lriPuvyPTT-9dKW5eddkckvSj6X4NCq ok', 'ogFhLwHiGLCnBGoDV0MG'],
    ['mail jane\u2063doe@example.com ok', 'jane'],
    ['call ٤١٥-٥٥٥-٢٦٧١ ok', '٤١٥'],
    ['IBAN DE89 3704 0044\n0532 0130 00 ok', '3704'],
    [`note ${Buffer.from('contact jane.doe@example.com please').toString('base64')} ok`, 'Y29udGFjdC'],
    ['url jane.doe%40example.com ok', 'jane.doe'],
  ];
  for (const [text, secretPart] of cases) {
    const whole = out.text(text);
    assert.ok(!whole.includes(secretPart), `whole: ${whole}`);
    for (const size of [1, 2, 3, 7, 16]) {
      const s = out.stream();
      let got = '';
      for (let i = 0; i < text.length; i += size) got += s.push(text.slice(i, i + size));
      got += s.end();
      assert.equal(got, whole, `chunks of ${size}: ${JSON.stringify(text)}`);
    }
  }
});

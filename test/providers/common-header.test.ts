// header() (service/providers/common.ts) reads upstream response headers for every translated response
// (content-encoding, retry-after): exact name first, else a case-insensitive match.
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { decodeBody, header } from '../../service/providers/common.ts';

describe('provider response header lookup', () => {
  it('finds a name exactly or case-insensitively, first match in order; absent is undefined', () => {
    assert.equal(header({ 'retry-after': '3' }, 'retry-after'), '3');
    assert.equal(header({ 'Retry-After': '7', 'RETRY-AFTER': '9' }, 'retry-after'), '7');
    assert.equal(header({ 'content-type': 'application/json' }, 'content-encoding'), undefined);
    assert.equal(header({}, 'content-encoding'), undefined);
  });

  it('decodes a body whose Content-Encoding came in any case', () => {
    const body = Buffer.from('{"ok":true}');
    assert.deepEqual(decodeBody({ 'Content-Encoding': 'GZIP' }, gzipSync(body)), body);
    assert.equal(decodeBody({ 'content-type': 'application/json' }, body), body);
  });
});

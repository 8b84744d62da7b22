// The exact o200k tokenizer is loaded before Tollgate serves: importing it blocks the event loop for
// ~150–300 ms, and when that happened mid-traffic (the first near-limit request triggered it) other requests'
// Redis budget calls hit their 150 ms timeout and were refused as budget_store_unavailable. This file runs in
// its own process, so nothing else has loaded the tokenizer before startTollgate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { startTollgate } from '../../service/app.ts';
import { o200kIfReady } from '../../service/budget/tokenizer.ts';

test('the exact tokenizer is ready as soon as startTollgate resolves (never loaded mid-traffic)', async () => {
  const t = await startTollgate({ configDir: 'policies', grpcAddr: '127.0.0.1:0', httpAddr: '127.0.0.1:0', lineageSinks: ['none'], watchConfig: false, log: pino({ level: 'silent' }), mode: 'development' });
  try {
    const count = o200kIfReady();
    assert.ok(count, 'loaded before serving');
    assert.equal(count('hello world'), 2);
  } finally {
    await t.close(100);
  }
});

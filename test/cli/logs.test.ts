// Logs: JSON lines unless stdout is a terminal (then one readable line per entry); TOLLGATE_LOG_FORMAT
// overrides. The budget store reports a Redis outage once, naming the URL without its password.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { RedisStore } from '../../service/budget/redis.ts';
import { createLogger, formatLine, logEnvProblems, logFormat, logLevel } from '../../service/telemetry/log.ts';
import { tollgate } from './run.ts';

describe('log format', { timeout: 120_000 }, () => {
  it('text on a terminal, JSON otherwise; TOLLGATE_LOG_FORMAT wins; bad values are reported, not fatal', () => {
    assert.equal(logFormat({}, true), 'text');
    assert.equal(logFormat({}, false), 'json');
    assert.equal(logFormat({ TOLLGATE_LOG_FORMAT: 'json' }, true), 'json');
    assert.equal(logFormat({ TOLLGATE_LOG_FORMAT: 'text' }, false), 'text');
    assert.equal(logFormat({ TOLLGATE_LOG_FORMAT: 'pretty' }, false), 'json');
    assert.deepEqual(logEnvProblems({ TOLLGATE_LOG_FORMAT: 'pretty', TOLLGATE_LOG_LEVEL: 'loud' }).length, 2);
    assert.equal(logLevel({ TOLLGATE_LOG_LEVEL: 'loud' }), 'info');
    assert.equal(logLevel({ TOLLGATE_LOG_LEVEL: 'debug' }), 'debug');
  });

  it('the text form: time, level, message, fields; an error as its message (stack only with TOLLGATE_DEBUG=1)', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', base: { service: 'tollgate' } }, 'text', { write: (s) => lines.push(s) });
    log.warn({ provider: 'openai', err: new Error('boom') }, 'provider "openai": credential env OPENAI_API_KEY is not set');
    log.debug('hidden');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} WARN  provider "openai": credential env OPENAI_API_KEY is not set provider=openai err=boom\n$/);
    const json = JSON.stringify({ level: 50, time: 0, msg: 'x', err: { message: 'm', stack: 'Error: m\n    at f (a.ts:1:1)' } });
    assert.doesNotMatch(formatLine(json, false), /^\s+at /m);
    assert.match(formatLine(json, true), /^\s+at f/m);
  });

  it('`tollgate serve` logs JSON when stdout is not a terminal, text with TOLLGATE_LOG_FORMAT=text; a missing config dir is one line', async () => {
    const env = { TOLLGATE_CONFIG: join(tmpdir(), 'tollgate-no-such-config'), TOLLGATE_LOG_LEVEL: 'info', TOLLGATE_GRPC_ADDR: '127.0.0.1:0', TOLLGATE_HTTP_ADDR: '127.0.0.1:0', TOLLGATE_LINEAGE: 'none' };
    const j = await tollgate(['serve'], env);
    assert.equal(j.code, 1, j.stderr);
    const fatal = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string }).find((o) => o.level === 60);
    assert.match(fatal?.msg ?? '', /^not starting: config directory \S+tollgate-no-such-config does not exist/);
    assert.doesNotMatch(j.stdout, /"stack"/);
    const t = await tollgate(['serve'], { ...env, TOLLGATE_LOG_FORMAT: 'text' });
    assert.equal(t.code, 1);
    assert.match(t.stdout, /^\d\d:\d\d:\d\d\.\d{3} FATAL not starting: config directory \S+ does not exist$/m);
    assert.doesNotMatch(t.stdout, /^\{/m);
  });
});

describe('budget store: Redis outage', { timeout: 30_000 }, () => {
  it('is logged once ("cannot connect to Redis at <url>", password hidden), not once per retry', async () => {
    const warnings: { obj: object; msg: string }[] = [];
    const store = new RedisStore({ url: 'redis://:hunter2@127.0.0.1:1', logger: { warn: (obj, msg) => warnings.push({ obj, msg }), error: () => undefined } });
    try {
      await new Promise((r) => setTimeout(r, 2500)); // several reconnect attempts (backoff 50 ms → 2 s)
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.match(warnings[0]!.msg, /^budget store: cannot connect to Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1; retrying in the background/);
      assert.ok(!JSON.stringify(warnings).includes('hunter2'));
    } finally {
      await store.close();
    }
  });
});

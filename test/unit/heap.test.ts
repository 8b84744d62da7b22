// TOLLGATE_HEAP_GROWING_PERCENT: parsed strictly, applied to V8 at start-up, refused with a clear message when wrong.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { DEFAULT_HEAP_GROWING_PERCENT, HeapConfigError, heapGrowingPercent } from '../../service/heap.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { env, cwd: ROOT, timeout: 30_000 }, (err, out, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, out: out + stderr }),
    );
  });
}

// A child process that applies a growth, then retains ~320 MB in 2.5 MB steps and counts V8's full collections.
const GROW = `
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { applyHeapGrowth } from './service/heap.ts';
applyHeapGrowth(Number(process.argv[1]));
let full = 0;
new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) full++; }).observe({ entryTypes: ['gc'] });
globalThis.gc();
const keep = [];
for (let i = 0; i < 128; i++) { keep.push(new Array(327680).fill(i)); if (i % 16 === 0) await new Promise((r) => setImmediate(r)); }
await new Promise((r) => setTimeout(r, 50));
console.log(JSON.stringify({ full, kept: keep.length }));
`;

async function fullCollections(percent: number): Promise<number> {
  const r = await run(['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', GROW, String(percent)]);
  assert.equal(r.code, 0, r.out);
  return (JSON.parse(r.out.trim().split('\n').pop()!) as { full: number }).full;
}

describe('heap growth', { timeout: 90_000 }, () => {
  it('defaults to V8 deciding (0), takes whole numbers, and leaves an explicit node flag alone', () => {
    assert.equal(DEFAULT_HEAP_GROWING_PERCENT, 0);
    assert.equal(heapGrowingPercent({}, []), 0);
    assert.equal(heapGrowingPercent({ TOLLGATE_HEAP_GROWING_PERCENT: '' }, []), 0);
    assert.equal(heapGrowingPercent({ TOLLGATE_HEAP_GROWING_PERCENT: '0' }, []), 0);
    assert.equal(heapGrowingPercent({ TOLLGATE_HEAP_GROWING_PERCENT: '75' }, []), 75);
    assert.equal(heapGrowingPercent({ TOLLGATE_HEAP_GROWING_PERCENT: '75' }, ['--heap-growing-percent=50']), undefined);
    assert.equal(heapGrowingPercent({}, ['--enable-source-maps', '--heap_growing_percent=50']), undefined);
  });

  it('refuses anything but a whole number from 0 to 1000, naming the variable', () => {
    for (const bad of ['-1', 'abc', '1.5', '1001', '30%', ' ', ' 30', '0x1e', '1e2']) {
      assert.throws(() => heapGrowingPercent({ TOLLGATE_HEAP_GROWING_PERCENT: bad }, []), (e: unknown) => e instanceof HeapConfigError && /TOLLGATE_HEAP_GROWING_PERCENT must be a whole number from 0/.test(e.message), bad);
    }
  });

  it('reaches V8: a small growth makes the heap collect more often while it grows than V8 left alone', async () => {
    const own = await fullCollections(0);
    const small = await fullCollections(5);
    assert.ok(small > own, `full collections while retaining 320 MB: 5% growth ${small}, V8's own ${own}`);
  });

  it('`tollgate serve` exits 1 with a clear message for a bad value', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, TOLLGATE_HEAP_GROWING_PERCENT: 'lots', TOLLGATE_GRPC_ADDR: '127.0.0.1:0', TOLLGATE_HTTP_ADDR: '127.0.0.1:0', TOLLGATE_LINEAGE: 'none', TOLLGATE_CONFIG: `${ROOT}policies` };
    const r = await run([`${ROOT}bin/tollgate.js`, 'serve'], env);
    assert.equal(r.code, 1);
    assert.match(r.out, /refusing to start: TOLLGATE_HEAP_GROWING_PERCENT must be a whole number from 0 \(V8's own growth\) to 1000, got \\?"lots\\?"/);
    assert.doesNotMatch(r.out, /\n\s+at /, 'no stack trace');
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { BUILTIN_DETECTORS, Scanner } from '../../service/redaction/index.ts';

interface Line {
  text: string;
  pii: Record<string, string[]>;
}

const dir = new URL('./corpus/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
const lines: { file: string; n: number; line: Line }[] = [];
for (const f of files) {
  readFileSync(new URL(f, dir), 'utf8')
    .split('\n')
    .forEach((l, i) => {
      if (l.trim() !== '') lines.push({ file: f, n: i + 1, line: JSON.parse(l) as Line });
    });
}

// Each detector alone, so one detector's hit can't hide another's miss behind overlap merging.
const stats = new Map<string, { tp: number; fp: number; fn: number }>();
const problems: string[] = [];
for (const d of BUILTIN_DETECTORS) {
  const scanner = new Scanner([d]);
  const st = { tp: 0, fp: 0, fn: 0 };
  for (const { file, n, line } of lines) {
    const expected = [...(line.pii[d.name] ?? [])];
    const found = scanner.scan(line.text).map((f) => line.text.slice(f.start, f.end));
    for (const v of found) {
      const i = expected.indexOf(v);
      if (i >= 0) {
        st.tp++;
        expected.splice(i, 1);
      } else {
        st.fp++;
        problems.push(`${file}:${n} ${d.name} false positive ${JSON.stringify(v)}`);
      }
    }
    for (const v of expected) {
      st.fn++;
      problems.push(`${file}:${n} ${d.name} missed ${JSON.stringify(v)}`);
    }
  }
  stats.set(d.name, st);
}

test('corpus is big enough: ≥30 positives and ≥30 negatives per file, ≥15 labelled values per detector', () => {
  for (const f of files) {
    const mine = lines.filter((l) => l.file === f);
    const pos = mine.filter((l) => Object.keys(l.line.pii).length > 0).length;
    const neg = mine.filter((l) => Object.keys(l.line.pii).length === 0).length;
    assert.ok(pos >= 30 && neg >= 30, `${f}: ${pos} positives, ${neg} negatives`);
  }
  assert.ok(lines.length >= 3000, `${lines.length} lines`);
  assert.ok(lines.filter((l) => Object.keys(l.line.pii).length === 0).length >= 1000, 'look-alike negatives');
  for (const [name, { tp, fn }] of stats) assert.ok(tp + fn >= 15, `${name}: only ${tp + fn} labelled values`);
});

test('precision ≥ 0.98 and recall ≥ 0.99 per detector (entity type)', () => {
  const rows: string[] = [];
  for (const [name, { tp, fp, fn }] of stats) {
    const precision = tp + fp === 0 ? 1 : tp / (tp + fp);
    const recall = tp + fn === 0 ? 1 : tp / (tp + fn);
    rows.push(`${name.padEnd(16)} tp=${String(tp).padStart(3)} fp=${fp} fn=${fn} precision=${precision.toFixed(3)} recall=${recall.toFixed(3)}`);
  }
  console.log(rows.join('\n'));
  if (problems.length > 0) console.log(problems.join('\n'));
  for (const [name, { tp, fp, fn }] of stats) {
    assert.ok(tp > 0, `${name}: no labelled positives`);
    assert.ok(tp / (tp + fp) >= 0.98, `${name}: precision ${(tp / (tp + fp)).toFixed(3)}`);
    assert.ok(tp / (tp + fn) >= 0.99, `${name}: recall ${(tp / (tp + fn)).toFixed(3)}`);
  }
});

test('zero leaks: with every detector on, each labelled value is redacted whole', () => {
  const all = new Scanner(BUILTIN_DETECTORS);
  const leaks: string[] = [];
  let values = 0;
  for (const { file, n, line } of lines) {
    const findings = all.scan(line.text);
    const covered = new Uint8Array(line.text.length);
    for (const f of findings) covered.fill(1, f.start, f.end);
    for (const [det, vs] of Object.entries(line.pii)) {
      for (const v of vs) {
        values++;
        let at = line.text.indexOf(v);
        assert.ok(at >= 0, `${file}:${n} label ${JSON.stringify(v)} is not in the text`);
        for (; at >= 0; at = line.text.indexOf(v, at + 1)) {
          let open = -1;
          for (let k = 0; k < v.length && open < 0; k++) if (covered[at + k] === 0) open = k;
          if (open >= 0) leaks.push(`${file}:${n} ${det} ${JSON.stringify(v)} leaks from offset ${open}`);
        }
      }
    }
  }
  console.log(`${values} labelled values, ${leaks.length} leaked`);
  assert.deepEqual(leaks, []);
});

import { BUILTIN_DETECTORS } from '../../service/redaction/detectors.ts';
import { compileCustomDetector } from '../../service/redaction/custom.ts';
const PROSE = 'Thanks for the update on the quarterly report. The team reviewed the numbers in the meeting on Tuesday and agreed that revenue grew 12% while costs stayed flat at 3.4 million. Please prepare the slides for version 2.1.0 of the deck, including the chart from section 4 and the customer quotes. Order 100234 shipped on 2024-05-06 at 10:30:00 UTC; tracking will follow. ';
let big = ''; let k = 0;
while (big.length < 1_000_000) big += PROSE + (k++ % 10 === 0 ? 'contact bob@example.org or 415-555-0199. ' : '');
big = JSON.parse(JSON.stringify(big));
const ds = [...BUILTIN_DETECTORS, compileCustomDetector({ name: 'employee_id', regex: 'EMP-[0-9]{6}' }), compileCustomDetector({ name: 'codename', keywords: ['Project Falcon', 'Bluebird'], caseInsensitive: true })];
let tot = 0;
for (const d of ds) {
  const out: any[] = []; d.find(big, out); out.length = 0;
  for (let i = 0; i < 15; i++) { out.length = 0; d.find(big, out); }
  let best = 1e9; for (let i = 0; i < 15; i++) { out.length = 0; const t = performance.now(); d.find(big, out); best = Math.min(best, performance.now() - t); }
  tot += best; console.log(d.name.padEnd(16), best.toFixed(2), 'ms', out.length);
}
console.log('total', tot.toFixed(2));
import { fold } from '../../service/redaction/scan.ts';
{ for (let i = 0; i < 10; i++) fold(big); const t = performance.now(); for (let i = 0; i < 5; i++) fold(big); console.log('fold', ((performance.now() - t) / 5).toFixed(2)); }

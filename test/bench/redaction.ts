// Redaction throughput with every built-in detector on (plus one custom regex and keyword list), and the cost on the
// request the ext_proc bench sends, with the example bundle's rules, through the port the exchange calls.
import { compileRedactor } from '../../service/redaction/index.ts';
import { RedactorCache } from '../../service/redaction/redactor.ts';
import { redactionPort } from '../../service/gateway/adapters.ts';
import { chatWorkload } from './chat-workload.ts';

const PROSE =
  'Thanks for the update on the quarterly report. The team reviewed the numbers in the meeting on Tuesday and ' +
  'agreed that revenue grew 12% while costs stayed flat at 3.4 million. Please prepare the slides for version 2.1.0 ' +
  'of the deck, including the chart from section 4 and the customer quotes. Order 100234 shipped on 2024-05-06 at ' +
  '10:30:00 UTC; tracking will follow. ';

function chatRequest(): Record<string, unknown> {
  return {
    model: 'gpt-4o',
    messages: [
      { role: 'system', content: 'You are a helpful support assistant for Acme. Be concise and polite.' },
      {
        role: 'user',
        content:
          PROSE +
          'My email is jane.doe@example.com and my phone is +1 (415) 555-2671. I paid with 4111 1111 1111 1111. ' +
          PROSE +
          'Server 10.20.30.40 keeps timing out. ' +
          PROSE.slice(0, 250),
      },
      { role: 'assistant', content: 'I can help with that. Could you confirm the account holder name?' },
      { role: 'user', content: 'Jane Doe, account DE89 3704 0044 0532 0130 00. ' + PROSE.slice(0, 120) },
    ],
    temperature: 0.2,
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

// What policies/policies/30-data-protection.yaml decides for tenant acme (the bench's key): mask-pii, mask-secrets
// (also on responses) and acme-codenames with its keyword detector.
const EXAMPLE_RULES = [
  { source: 'data-protection/mask-pii', detectors: ['pii'], action: 'mask' as const, responses: false },
  { source: 'data-protection/mask-secrets', detectors: ['secrets'], action: 'mask' as const, responses: true },
  { source: 'data-protection/acme-codenames', detectors: ['acme_codenames'], action: 'mask' as const, responses: true },
];
const EXAMPLE_CUSTOM = [{ name: 'acme_codenames', keywords: ['bluebird', 'nightjar'], caseInsensitive: true }];

/** CPU µs per redactRequest on the ext_proc bench's chat request (bodies parsed beforehand, as the exchange has them). */
function workloadCpu(): { cpu: number; bytes: number } {
  const port = redactionPort(new RedactorCache({ secret: 'bench-secret-0123456789abcdef' }));
  const json = chatWorkload().body.toString();
  const batch = 2000;
  const rounds: number[] = [];
  for (let r = 0; r < 12; r++) {
    const bodies: Record<string, unknown>[] = [];
    for (let i = 0; i < batch; i++) bodies.push(JSON.parse(json) as Record<string, unknown>);
    const c0 = process.cpuUsage();
    for (let i = 0; i < batch; i++) port.redactRequest(bodies[i], EXAMPLE_RULES, EXAMPLE_CUSTOM, 'acme');
    const c = process.cpuUsage(c0);
    if (r >= 2) rounds.push((c.user + c.system) / batch); // the first two warm up
  }
  rounds.sort((a, b) => a - b);
  return { cpu: rounds[Math.floor(rounds.length / 2)], bytes: json.length };
}

export async function bench(): Promise<string[]> {
  const workload = workloadCpu();
  const redactor = compileRedactor(
    [
      { source: 'bench/all', detectors: ['*'], action: 'mask', responses: false },
      { source: 'bench/custom', detectors: ['employee_id', 'codename'], action: 'mask', responses: false },
    ],
    [
      { name: 'employee_id', regex: 'EMP-[0-9]{6}' },
      { name: 'codename', keywords: ['Project Falcon', 'Bluebird'], caseInsensitive: true },
    ],
  );
  const body = chatRequest();
  const bytes = Buffer.byteLength(JSON.stringify(body));

  // µs per 1.5 KB chat request
  for (let i = 0; i < 300; i++) redactor.redactRequest(chatRequest());
  const times: number[] = [];
  const deadline = performance.now() + 1500;
  while (performance.now() < deadline && times.length < 20000) {
    const b = chatRequest();
    const t = performance.now();
    redactor.redactRequest(b);
    times.push((performance.now() - t) * 1000);
  }
  times.sort((a, b) => a - b);

  // MB/s over 1 MB of mostly clean prose with PII sprinkled in (median of timed runs; the body is parsed JSON, so
  // its strings are flat like a real request's).
  let big = '';
  let k = 0;
  while (big.length < 1_000_000) big += PROSE + (k++ % 10 === 0 ? 'contact bob@example.org or 415-555-0199. ' : '');
  const bigJson = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: big }] });
  const runs: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < 2000 && runs.length < 60) {
    const b = JSON.parse(bigJson) as Record<string, unknown>;
    const t = performance.now();
    redactor.redactRequest(b);
    runs.push(performance.now() - t);
  }
  runs.sort((a, b) => a - b);
  const mbps = big.length / 1e6 / (percentile(runs, 50) / 1000);
  const bestMbps = big.length / 1e6 / (runs[0] / 1000);

  // Streaming output redaction, 20-char chunks
  const out = compileRedactor([{ source: 'bench/out', detectors: ['*'], action: 'mask', responses: true }]).outputTransform()!;
  const text = (JSON.parse(JSON.stringify(big)) as string).slice(0, 200_000);
  const t1 = performance.now();
  let sn = 0;
  while (performance.now() - t1 < 1000) {
    const st = out.stream();
    for (let i = 0; i < text.length; i += 20) st.push(text.slice(i, i + 20));
    st.end();
    sn++;
  }
  const smbps = (sn * text.length) / 1e6 / ((performance.now() - t1) / 1000);

  // MB/s over 1 MB of the harder text the detectors now read: other scripts, look-alike characters, hard-wrapped
  // keys, URL-encoded and base64-encoded values (every pass of the scanner has work to do).
  const HARD =
    'Kundin erreichbar unter Telefon 030/12345678, E-Mail jörg.müller@bücher.de. 電話：13812345678。 ' +
    'بطاقة ٤١١١ ١١١١ ١١١١ ١١١١ — signup?email=jane%40example.com&ref=ad ' +
    `note ${Buffer.from('contact jane.doe@example.com please').toString('base64')} ` +
    'key sk-proj-ogFhLwHiGLCnBGoDV0MG_7awidCW0W7DwVWmtKqc5d43Q\nVkFGz9lriPuvyPTT-9dKW5eddkckvSj6X4NCq ok.\n' +
    PROSE;
  let hard = '';
  while (hard.length < 1_000_000) hard += HARD;
  const hardJson = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: hard }] });
  const hruns: number[] = [];
  const t2 = performance.now();
  while (performance.now() - t2 < 2000 && hruns.length < 30) {
    const b = JSON.parse(hardJson) as Record<string, unknown>;
    const t = performance.now();
    redactor.redactRequest(b);
    hruns.push(performance.now() - t);
  }
  hruns.sort((a, b) => a - b);
  const hardMbps = hard.length / 1e6 / (percentile(hruns, 50) / 1000);

  return [
    `redaction: ext_proc bench chat request (${(workload.bytes / 1024).toFixed(2)}KB), example bundle rules: ${workload.cpu.toFixed(1)}µs CPU per request (median of 10 rounds)`,
    `redaction: ${(bytes / 1024).toFixed(1)}KB chat request, all detectors: p50 ${percentile(times, 50).toFixed(1)}µs p99 ${percentile(times, 99).toFixed(1)}µs (${times.length} runs)`,
    `redaction: throughput ${mbps.toFixed(1)} MB/s median (best ${bestMbps.toFixed(1)} MB/s) on a 1 MB request, all detectors`,
    `redaction: streaming output (20-char chunks) ${smbps.toFixed(1)} MB/s`,
    `redaction: throughput ${hardMbps.toFixed(1)} MB/s median on 1 MB of mixed scripts, look-alikes, wrapped keys, URL/base64-encoded values`,
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of await bench()) console.log(line);
}

import { readConfigDir } from './service/config/documents.ts';
import { compilePolicies, runPolicyTests } from './service/policy/index.ts';
try { const b = compilePolicies(readConfigDir('policies/policies'));
  const r = runPolicyTests(b, readConfigDir('policies/tests'), []);
  console.log(r.lines.join('\n')); console.log(r.passed, 'passed', r.failed, 'failed'); }
catch (e) { console.log((e as Error).message); }

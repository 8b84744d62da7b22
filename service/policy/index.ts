// Public API of the policy engine. Import from here: `import { compilePolicies } from '../policy/index.ts'`.
import type { ConfigDocument } from '../config/documents.ts';
import { compileDocuments } from './compile.ts';
import { createBundle } from './evaluate.ts';
import type { CompileOptions, PolicyBundle } from './types.ts';

export type {
  CompileOptions,
  Decision,
  Denial,
  DeploymentInfo,
  EvaluateOptions,
  PolicyBundle,
  PolicyErrorEvent,
  PolicyInput,
  PolicyMessage,
  RouteCheckResult,
  RuleKind,
  RuleOutcome,
  RuleRecord,
} from './types.ts';
export { runPolicyTests, type PolicyTestOptions, type PolicyTestResult } from './testing.ts';
export { buildRequestInput, endpointOf, estimateTokens, messagesOf, policyHeaders, type RequestFacts } from './context.ts';
export { LIMITS } from './cel.ts';
export { globMatch } from './glob.ts';
export { cidrContains } from './cidr.ts';

/**
 * Compiles every `kind: Policy` document into a bundle (other kinds are ignored). Every CEL
 * expression is parsed, type-checked and sample-evaluated now; throws ConfigErrors listing every
 * problem with file:line:col.
 */
export function compilePolicies(docs: ConfigDocument[], opts: CompileOptions = {}): PolicyBundle {
  return createBundle(compileDocuments(docs, opts), opts);
}

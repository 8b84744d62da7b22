// Shared builders for policy tests.
import { ConfigErrors, parseDocuments, type ConfigDocument } from '../../service/config/documents.ts';
import { buildRequestInput, compilePolicies, type CompileOptions, type PolicyBundle, type PolicyInput } from '../../service/policy/index.ts';
import type { DeploymentInfo } from '../../service/policy/types.ts';

/** One Policy document (default name `p`) from the YAML of its spec (indented by two spaces); spec starts on line 5. */
export function policyDocs(spec: string, file = 'p.yaml', name = 'p'): ConfigDocument[] {
  return parseDocuments(file, `apiVersion: tollgate.dev/v1alpha1\nkind: Policy\nmetadata: {name: ${name}}\nspec:\n${spec}`);
}

/** A policy with one deny rule; the expression value starts at line 8, column 21. */
export function denyPolicy(expression: string): ConfigDocument[] {
  return policyDocs(`  rules:\n    - name: r\n      deny:\n        expression: ${JSON.stringify(expression)}\n`);
}

export function compile(spec: string, opts: CompileOptions = {}): PolicyBundle {
  return compilePolicies(policyDocs(spec), opts);
}

/** The ConfigErrors thrown by compiling, or fails the test when compilation succeeds. */
export function loadErrors(docs: ConfigDocument[], opts: CompileOptions = {}): ConfigErrors {
  try {
    compilePolicies(docs, opts);
  } catch (e) {
    if (e instanceof ConfigErrors) return e;
    throw e;
  }
  throw new Error('expected the policy to be rejected at load');
}

export interface InputOverrides {
  api?: 'openai' | 'anthropic';
  path?: string;
  headers?: Record<string, string>;
  body?: Record<string, unknown>;
  principal?: Partial<PolicyInput['principal']>;
  tenant?: PolicyInput['tenant'];
  team?: PolicyInput['team'];
  now?: Date;
}

export function input(o: InputOverrides = {}): PolicyInput {
  const api = o.api ?? 'openai';
  return {
    request: buildRequestInput({
      method: 'POST',
      path: o.path ?? (api === 'anthropic' ? '/v1/messages' : '/v1/chat/completions'),
      api,
      headers: o.headers ?? { 'user-agent': 'test' },
      body: o.body ?? { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] },
    }),
    principal: { keyId: 'k1', tenant: 'acme', team: 'research', user: 'alice', groups: ['eng'], claims: {}, authMethod: 'key', ...o.principal },
    tenant: o.tenant ?? { name: 'acme', attributes: { tier: 'enterprise', residency: 'eu' } },
    team: o.team ?? { name: 'research', attributes: {} },
    now: o.now ?? new Date('2025-01-15T10:00:00Z'),
  };
}

export function deployment(o: Partial<DeploymentInfo> & { id: string }): DeploymentInfo {
  return {
    model: 'gpt-4o',
    provider: 'openai',
    providerApi: 'openai',
    region: 'us-east-1',
    selfHosted: false,
    dataRetention: false,
    inputPricePerM: 2.5,
    outputPricePerM: 10,
    contextWindow: 128000,
    ...o,
  };
}

// Test oracle: the CEL activation as it was built before it became lazy (service/policy/activation.ts).
// Every field converted up front; fast.test.ts and lazy-activation.test.ts compare the lazy one with it.
import { headerMap, int, jsonToCel, NOW_MS, timestampOf } from '../../service/policy/activation.ts';
import type { PolicyInput } from '../../service/policy/types.ts';

/** The policy activation built eagerly as plain Maps: the reference the lazy one (LazyActivation) must match. */
export function eagerActivation(input: PolicyInput, withBody = true): Record<string, unknown> {
  const r = input.request;
  const p = input.principal;
  const request = new Map<string, unknown>([
    ['method', r.method],
    ['path', r.path],
    ['endpoint', r.endpoint],
    ['api', r.api],
    ['headers', headerMap(r.headers)],
    ['model', r.model],
    ['canonicalModel', r.canonicalModel || r.model],
    ['stream', r.stream],
    ['params', jsonToCel(r.params)],
    ['messages', r.messages.map((m) => new Map<string, unknown>([['role', m.role], ['text', m.text]]))],
    ['tokenEstimate', int(r.tokenEstimate)],
    ['size', int(r.size)],
  ]);
  if (withBody) request.set('body', jsonToCel(r.body));
  return {
    request,
    principal: new Map<string, unknown>([
      ['keyId', p.keyId],
      ['tenant', p.tenant],
      ['team', p.team],
      ['user', p.user],
      ['groups', p.groups.filter((g) => typeof g === 'string')],
      ['claims', jsonToCel(p.claims)],
      ['authMethod', p.authMethod],
    ]),
    tenant: new Map<string, unknown>([
      ['name', input.tenant.name],
      ['attributes', jsonToCel(input.tenant.attributes)],
      ['timeZone', input.tenant.timeZone ?? 'UTC'],
    ]),
    team: new Map<string, unknown>([
      ['name', input.team.name],
      ['attributes', jsonToCel(input.team.attributes)],
    ]),
    mcp: new Map<string, unknown>([
      ['server', input.mcp?.server ?? ''],
      ['method', input.mcp?.method ?? ''],
      ['tool', input.mcp?.tool ?? ''],
      ['arguments', jsonToCel(input.mcp?.arguments ?? {})],
      ['sessionId', input.mcp?.sessionId ?? ''],
    ]),
    now: timestampOf(input.now),
    [NOW_MS]: input.now.getTime(),
  };
}

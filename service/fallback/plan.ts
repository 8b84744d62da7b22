// The fallback plan: what the router stage decided and every upstream attempt needs, carried in
// Envoy dynamic metadata (namespace `tollgate`, key `plan`). Dynamic metadata is written only by
// filters, never by clients, so it needs no signature; it is still validated like any input.
import { z } from 'zod';
import { GatewayError, type ClientApi } from '../errors.ts';
import type { Operation } from '../providers/types.ts';
import { PLAN_KEY, PLAN_NAMESPACE } from './contract.ts';

export interface FallbackPlan {
  v: 1;
  api: ClientApi;
  op: Operation;
  requestId: string;
  /** The model as requested (wildcard models resolve their upstream model from it). */
  model: string;
  stream: boolean;
  /** The chain cluster the router stage chose. */
  cluster: string;
  /** Deployment ids this request may reach (policy-checked), in chain order. */
  deployments: string[];
  /** Client headers translators read (`anthropic-version`, `anthropic-beta`). */
  clientHeaders: Record<string, string>;
}

const planSchema = z.strictObject({
  v: z.literal(1),
  api: z.enum(['openai', 'anthropic']),
  op: z.enum(['chat', 'embeddings']),
  requestId: z.string().min(1).max(128),
  model: z.string().min(1).max(512),
  stream: z.boolean(),
  cluster: z.string().min(1),
  deployments: z.array(z.string().min(1)).min(1).max(16),
  clientHeaders: z.record(z.string(), z.string()),
});

/** The plan from the forwarded metadata; a missing or malformed plan fails the attempt closed. */
export function readPlan(metadata: Record<string, Record<string, unknown>>): FallbackPlan {
  const raw = metadata[PLAN_NAMESPACE]?.[PLAN_KEY];
  if (raw === undefined)
    throw new GatewayError(
      'internal',
      'This upstream attempt carries no Tollgate plan: the router-level ext_proc did not process the request, or the upstream filter does not forward the "tollgate" metadata namespace.',
      { code: 'fallback_plan_missing', status: 500 },
    );
  const parsed = planSchema.safeParse(raw);
  if (!parsed.success)
    throw new GatewayError('internal', `The Tollgate plan of this attempt is malformed: ${parsed.error.issues[0]?.message ?? 'invalid'}.`, {
      code: 'fallback_plan_invalid',
      status: 500,
    });
  return parsed.data;
}

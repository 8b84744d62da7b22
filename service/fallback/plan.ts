// The fallback plan: what the router stage decided and every upstream attempt needs, carried in
// Envoy dynamic metadata (namespace `tollgate`, key `plan`). Clients cannot write dynamic metadata,
// but other filters can, and so can anyone who opens an ext_proc stream: the plan is sealed
// (HMAC + expiry, seal.ts) by the router stage and opened here before any use. docs/security.md.
import { z } from 'zod';
import { GatewayError, type ClientApi } from '../errors.ts';
import type { Operation } from '../providers/types.ts';
import { PLAN_KEY, PLAN_NAMESPACE } from './contract.ts';
import type { PlanSealer } from './seal.ts';

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
  op: z.enum(['chat', 'embeddings', 'responses']),
  requestId: z.string().min(1).max(128),
  model: z.string().min(1).max(512),
  stream: z.boolean(),
  cluster: z.string().min(1),
  deployments: z.array(z.string().min(1)).min(1).max(16),
  clientHeaders: z.record(z.string(), z.string()),
  /** Added by PlanSealer.seal (ms since the epoch). */
  exp: z.number(),
});

const REFUSED: Record<'unsigned' | 'bad_signature' | 'malformed' | 'expired', [code: string, message: string]> = {
  unsigned: ['fallback_plan_invalid', 'The Tollgate plan of this attempt is not sealed: it was not written by a Tollgate router stage.'],
  bad_signature: [
    'fallback_plan_invalid',
    "The Tollgate plan of this attempt does not carry a valid signature: it was forged or altered, or this replica's TOLLGATE_PLAN_KEY differs from the router stage's.",
  ],
  malformed: ['fallback_plan_invalid', 'The Tollgate plan of this attempt is malformed.'],
  expired: ['fallback_plan_expired', 'The Tollgate plan of this attempt has expired (older than TOLLGATE_PLAN_TTL_MS).'],
};

/**
 * The plan from the forwarded metadata, after its seal is verified; a missing, unsigned, forged,
 * expired or malformed plan fails the attempt closed.
 */
export function readPlan(metadata: Record<string, Record<string, unknown>>, sealer: PlanSealer): FallbackPlan {
  const raw = metadata[PLAN_NAMESPACE]?.[PLAN_KEY];
  if (raw === undefined)
    throw new GatewayError(
      'internal',
      'This upstream attempt carries no Tollgate plan: the router-level ext_proc did not process the request, or the upstream filter does not forward the "tollgate" metadata namespace.',
      { code: 'fallback_plan_missing', status: 500 },
    );
  const opened = sealer.open(raw);
  if (!opened.ok) {
    const [code, message] = REFUSED[opened.reason];
    throw new GatewayError('internal', message, { code, status: 500 });
  }
  const parsed = planSchema.safeParse(opened.payload);
  if (!parsed.success)
    throw new GatewayError('internal', `The Tollgate plan of this attempt is malformed: ${parsed.error.issues[0]?.message ?? 'invalid'}.`, {
      code: 'fallback_plan_invalid',
      status: 500,
    });
  const { exp: _exp, ...plan } = parsed.data;
  return plan;
}

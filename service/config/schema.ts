// zod schemas for the core document kinds. Unknown fields are errors: a typo in a security
// config must not be silently ignored.
import { z } from 'zod';

const name = z.string().regex(/^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$/, 'lower-case letters, digits, ".", "_", "-"');

export const gatewaySpec = z.strictObject({
  maxRequestBytes: z.number().int().positive().max(64 * 1024 * 1024).default(4 * 1024 * 1024),
  /** Largest buffered response body (or streamed chunk) Tollgate accepts from Envoy; larger ones fail with 502. */
  maxResponseBytes: z.number().int().positive().max(64 * 1024 * 1024).default(32 * 1024 * 1024),
  /**
   * Request bodies at least this large get `override_message_timeout: largeBodyTimeoutMs` before they are
   * processed (redacting MBs of text can take longer than Envoy's message_timeout). 0 disables.
   */
  largeBodyBytes: z.number().int().nonnegative().default(256 * 1024),
  largeBodyTimeoutMs: z.number().int().positive().max(600000).default(10000),
  clusterHeader: z.string().default('x-tollgate-cluster'),
  hostHeader: z.string().default('x-tollgate-host'),
  jwt: z
    .strictObject({
      payloadKey: z.string().default('jwt_payload'),
      tenantClaim: z.string().default('tenant'),
      teamClaim: z.string().default('team'),
      userClaim: z.string().default('sub'),
      groupsClaim: z.string().default('groups'),
    })
    .default({
      payloadKey: 'jwt_payload',
      tenantClaim: 'tenant',
      teamClaim: 'team',
      userClaim: 'sub',
      groupsClaim: 'groups',
    }),
});

const credential = z.union([
  z.strictObject({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name') }),
  z.strictObject({ file: z.string().min(1) }),
  z.strictObject({ none: z.literal(true) }),
]);

/** An MCP server reached through Envoy at `/mcp/<name>` (service/mcp, docs/mcp.md). */
export const mcpServerSpec = z.strictObject({
  cluster: z.string().min(1),
  host: z.string().min(1),
  /** Path of the server's Streamable HTTP endpoint on the upstream, e.g. `/mcp`. */
  path: z.string().regex(/^\//, 'an absolute path').default('/mcp'),
  credential: credential.default({ none: true }),
  /** Header the credential goes in (the client's own credentials are never forwarded). */
  credentialHeader: z.string().regex(/^[a-z0-9-]+$/, 'a lower-case header name').default('authorization'),
  /** Written before the credential, e.g. `Bearer `. */
  credentialPrefix: z.string().default('Bearer '),
});

export const providerSpec = z.strictObject({
  api: z.enum(['openai', 'azure', 'anthropic', 'gemini', 'bedrock', 'vertex', 'mock']),
  cluster: z.string().min(1),
  host: z.string().min(1),
  basePath: z.string().default(''),
  credential,
  apiVersion: z.string().optional(),
  region: z.string().optional(),
  dataRetention: z.boolean().default(false),
  selfHosted: z.boolean().default(false),
});

const deployment = z.strictObject({
  id: z.string().optional(),
  provider: name,
  model: z.string().min(1),
  region: z.string().min(1),
  pricing: z
    .strictObject({
      inputPerMillion: z.number().nonnegative(),
      outputPerMillion: z.number().nonnegative(),
      cacheReadPerMillion: z.number().nonnegative().optional(),
      cacheWrite5mPerMillion: z.number().nonnegative().optional(),
      cacheWrite1hPerMillion: z.number().nonnegative().optional(),
      reasoningPerMillion: z.number().nonnegative().optional(),
      /** Above this many prompt tokens the whole request is priced at these rates (Gemini / Claude >200k). */
      longContext: z
        .strictObject({
          aboveInputTokens: z.number().int().positive(),
          inputPerMillion: z.number().nonnegative(),
          outputPerMillion: z.number().nonnegative(),
          cacheReadPerMillion: z.number().nonnegative().optional(),
          cacheWrite5mPerMillion: z.number().nonnegative().optional(),
          cacheWrite1hPerMillion: z.number().nonnegative().optional(),
          reasoningPerMillion: z.number().nonnegative().optional(),
        })
        .optional(),
    })
    .default({ inputPerMillion: 0, outputPerMillion: 0 }),
  contextWindow: z.number().int().positive().default(128000),
  weight: z.number().nonnegative().default(1),
  priority: z.number().int().default(0),
});

export const modelSpec = z.strictObject({
  aliases: z.array(z.string().min(1)).default([]),
  kind: z.enum(['chat', 'embedding']).default('chat'),
  strategy: z.enum(['priority', 'weighted', 'lowest-cost', 'lowest-latency']).default('priority'),
  deployments: z.array(deployment).min(1),
  /**
   * In-request fallback: each chain is an Envoy cluster with one priority per deployment (in this
   * order) and Tollgate's upstream ext_proc stage; Envoy's retries walk the priorities.
   */
  fallbackChains: z
    .array(
      z.strictObject({
        cluster: z.string().min(1),
        deployments: z.array(z.string().min(1)).min(2, 'a chain needs at least two deployments'),
      }),
    )
    .default([]),
});

export const tenantSpec = z.strictObject({
  timeZone: z.string().default('UTC'),
  attributes: z.record(z.string(), z.unknown()).default({}),
});

export const teamSpec = z.strictObject({
  tenant: name,
  attributes: z.record(z.string(), z.unknown()).default({}),
});

export const virtualKeySpec = z.strictObject({
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'hex SHA-256 of the key (never the key itself)'),
  tenant: name,
  team: name.optional(),
  user: z.string().optional(),
  groups: z.array(z.string()).default([]),
  disabled: z.boolean().default(false),
  expiresAt: z.iso.datetime().optional(),
});

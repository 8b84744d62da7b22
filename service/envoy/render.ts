// Renders the shipped envoy/envoy.yaml for another place to run: loopback addresses and ports, the
// Tollgate endpoints, provider clusters pointed at other upstreams (keeping each cluster's shape:
// TLS, SNI, SAN checks, protocol options, upstream filters), chain clusters built from the shipped
// chain as a template, and the shipped (commented) jwt_authn block switched on with a local JWKS.
// One source of truth: routes, filters, ext_proc settings and access log come from the shipped file.
import { parse, stringify } from 'yaml';

type Obj = Record<string, unknown>;

export interface RenderUpstream {
  host: string;
  port: number;
  /** TLS to this upstream: the CA that signed its certificate and the name it presents (SNI + SAN). */
  tls?: { caFile: string; sni: string };
}

export interface RenderCluster extends RenderUpstream {
  /** Shipped cluster whose shape a new cluster copies (default `openai`). Ignored for shipped names. */
  template?: string;
}

export interface RenderChainMember extends RenderUpstream {
  /** Deployment id (endpoint metadata tollgate.deployment). */
  deployment: string;
}

export interface RenderChain {
  /** Shipped chain cluster to copy (default: the first `tgc.` cluster). */
  template?: string;
  priorities: RenderChainMember[];
  /** Keep the template's upstream ext_proc filter (default true); false = attempts go straight to the endpoints. */
  upstreamExtProc?: boolean;
}

/** ext_proc processing_mode fields (the enum names). */
export interface RenderProcessingMode {
  request_header_mode?: 'DEFAULT' | 'SEND' | 'SKIP';
  response_header_mode?: 'DEFAULT' | 'SEND' | 'SKIP';
  request_body_mode?: 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED';
  response_body_mode?: 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED';
}

/** Fields of a route's retry_policy to replace (the rest stays as shipped). */
export interface RenderRetry {
  retryOn?: string[];
  retriableStatusCodes?: number[];
  numRetries?: number;
  perTryTimeoutMs?: number;
  /** false drops retry_priority (previous_priorities). */
  previousPriorities?: boolean;
  /** retry_back_off base_interval (max_interval becomes 10× it). */
  backOffMs?: number;
}

export interface RenderOptions {
  listener: { address: string; port: number };
  admin: { address: string; port: number };
  /** The `tollgate` cluster's endpoints (several = replicas, round-robin). */
  tollgate: { host: string; port: number }[];
  /** Provider clusters by name; shipped names are rewritten in place, new names copy a template. */
  clusters: Record<string, RenderCluster>;
  chains?: Record<string, RenderChain>;
  /** Drop shipped provider/chain clusters not named in `clusters`/`chains` (default true). */
  dropUnlisted?: boolean;
  /** The router-level ext_proc filter. */
  extProc?: {
    messageTimeoutMs?: number;
    maxMessageTimeoutMs?: number;
    failureModeAllow?: boolean;
    allowModeOverride?: boolean;
    /** grpc_service.initial_metadata added to every ext_proc filter (router-level and upstream). */
    initialMetadata?: Record<string, string>;
    /** processing_mode fields to replace. */
    processingMode?: RenderProcessingMode;
  };
  /** The upstream ext_proc filter of the chain clusters (copied from the shipped chain). */
  upstreamExtProc?: {
    messageTimeoutMs?: number;
    allowAllRouting?: boolean;
    /** request_attributes appended to the shipped ones. */
    extraRequestAttributes?: string[];
  };
  /** The retry_policy of every route that has one (the shipped chain route). */
  retry?: RenderRetry;
  /** Listener per_connection_buffer_limit_bytes. */
  bufferLimitBytes?: number;
  /** Route timeout for every route, ms. */
  routeTimeoutMs?: number;
  /** Switch on the shipped jwt_authn block, with this JWKS inline instead of remote_jwks. */
  jwt?: { jwks: string; issuer?: string; audiences?: string[] };
  /** Fills the shipped `${TOLLGATE_GRPC_SHARED_SECRET}` placeholders (Envoy does not expand variables). */
  sharedSecret?: string;
}

export const SHARED_SECRET_PLACEHOLDER = '${TOLLGATE_GRPC_SHARED_SECRET}';

export class RenderError extends Error {
  override readonly name = 'RenderError';
}

function obj(v: unknown, what: string): Obj {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new RenderError(`envoy config: ${what} is not a mapping`);
  return v as Obj;
}
function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new RenderError(`envoy config: ${what} is not a list`);
  return v;
}
function clone<T>(v: T): T {
  return structuredClone(v);
}
const seconds = (ms: number): string => `${ms / 1000}s`;

/**
 * The lines between `# BEGIN <name>` and `# END <name>`, uncommented (one leading `# ` removed;
 * lines starting with `##` stay comments). The shipped file keeps optional parts this way.
 */
function commentedBlock(source: string, name: string): { start: number; end: number; text: string } {
  const lines = source.split('\n');
  const start = lines.findIndex((l) => l.trim() === `# BEGIN ${name}`);
  const end = lines.findIndex((l, i) => i > start && l.trim() === `# END ${name}`);
  if (start < 0 || end < 0) throw new RenderError(`envoy config: no \`# BEGIN ${name}\` … \`# END ${name}\` block`);
  const text = lines
    .slice(start + 1, end)
    .map((l) => l.replace(/^(\s*)# ?/, '$1'))
    .filter((l) => !l.trimStart().startsWith('##'))
    .join('\n');
  return { start, end, text };
}

/** The source with the named commented blocks switched on (as an operator would uncomment them). */
export function uncommentBlocks(source: string, names: string[]): string {
  let out = source;
  for (const name of names) {
    const { start, end, text } = commentedBlock(out, name);
    const lines = out.split('\n');
    out = [...lines.slice(0, start), text, ...lines.slice(end + 1)].join('\n');
  }
  return out;
}

/** The shipped commented jwt_authn filter (between `# BEGIN jwt_authn` and `# END jwt_authn`), parsed. */
export function shippedJwtFilter(source: string): Obj {
  const parsed = arr(parse(commentedBlock(source, 'jwt_authn').text), 'jwt_authn block');
  return obj(parsed[0], 'jwt_authn filter');
}

function hcm(cfg: Obj): Obj {
  const listener = obj(arr(obj(cfg.static_resources, 'static_resources').listeners, 'listeners')[0], 'listener');
  const chain = obj(arr(listener.filter_chains, 'filter_chains')[0], 'filter_chain');
  const f = arr(chain.filters, 'filters').map((x) => obj(x, 'filter')).find((x) => x.name === 'envoy.filters.network.http_connection_manager');
  if (!f) throw new RenderError('envoy config: no http_connection_manager');
  return obj(f.typed_config, 'hcm');
}

function protocolOptions(cluster: Obj): Obj | undefined {
  const t = cluster.typed_extension_protocol_options as Obj | undefined;
  return t?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'] as Obj | undefined;
}

/** Plain HTTP/1.1 to a loopback fake: no TLS, no ALPN-based protocol choice, no SNI. */
function makePlaintext(cluster: Obj): void {
  delete cluster.transport_socket;
  delete cluster.transport_socket_matches;
  const po = protocolOptions(cluster);
  if (po) {
    delete po.upstream_http_protocol_options;
    if (po.auto_config) {
      delete po.auto_config;
      po.explicit_http_config = { http_protocol_options: {} };
    }
  }
}

function retarget(tls: Obj, caFile: string, sni?: string): void {
  const tc = obj(tls.typed_config, 'tls typed_config');
  if (sni !== undefined) tc.sni = sni;
  const common = obj(tc.common_tls_context, 'common_tls_context');
  const vc = obj(common.validation_context, 'validation_context');
  vc.trusted_ca = { filename: caFile };
  if (sni !== undefined && Array.isArray(vc.match_typed_subject_alt_names))
    vc.match_typed_subject_alt_names = [{ san_type: 'DNS', matcher: { exact: sni } }];
}

function endpoint(u: RenderUpstream, metadata?: Obj): Obj {
  const e: Obj = { endpoint: { address: { socket_address: { address: u.host, port_value: u.port } } } };
  if (metadata) e.metadata = { filter_metadata: metadata };
  return e;
}

function pointAt(cluster: Obj, name: string, u: RenderUpstream): void {
  cluster.name = name;
  cluster.type = 'STATIC';
  delete cluster.dns_lookup_family;
  cluster.load_assignment = { cluster_name: name, endpoints: [{ lb_endpoints: [endpoint(u)] }] };
  if (!u.tls) makePlaintext(cluster);
  else if (cluster.transport_socket) retarget(obj(cluster.transport_socket, 'transport_socket'), u.tls.caFile, u.tls.sni);
  else throw new RenderError(`envoy config: cluster ${name} has no TLS transport_socket to point at ${u.tls.sni}`);
}

function buildChain(template: Obj, name: string, chain: RenderChain, up: RenderOptions['upstreamExtProc']): Obj {
  const c = clone(template);
  c.name = name;
  const po = protocolOptions(c);
  if (chain.upstreamExtProc === false && po?.http_filters) {
    po.http_filters = (po.http_filters as unknown[]).filter((f) => !isExtProc(f));
    if ((po.http_filters as unknown[]).length <= 1) delete po.http_filters; // only the codec was left
  }
  for (const f of upstreamExtProcs(c)) {
    if (up?.messageTimeoutMs !== undefined) f.message_timeout = seconds(up.messageTimeoutMs);
    if (up?.allowAllRouting !== undefined) f.mutation_rules = { ...(f.mutation_rules as Obj | undefined), allow_all_routing: up.allowAllRouting };
    if (up?.extraRequestAttributes) f.request_attributes = [...((f.request_attributes as string[] | undefined) ?? []), ...up.extraRequestAttributes];
  }
  c.type = 'STATIC';
  delete c.dns_lookup_family;
  const tls = chain.priorities.map((p) => p.tls);
  if (tls.every((t) => !t)) makePlaintext(c);
  else if (tls.some((t) => !t)) throw new RenderError(`chain ${name}: mix of TLS and plaintext members is not supported`);
  else {
    const shippedMatch = obj(arr(c.transport_socket_matches, 'transport_socket_matches')[0], 'transport_socket_match');
    c.transport_socket_matches = chain.priorities.map((p, i) => {
      const m = clone(shippedMatch);
      m.name = `priority-${i}`;
      m.match = { provider: `priority-${i}` };
      retarget(obj(m.transport_socket, 'transport_socket'), p.tls!.caFile, p.tls!.sni);
      return m;
    });
    if (c.transport_socket) retarget(obj(c.transport_socket, 'transport_socket'), tls[0]!.caFile);
  }
  c.load_assignment = {
    cluster_name: name,
    endpoints: chain.priorities.map((p, i) => ({
      priority: i,
      lb_endpoints: [
        endpoint(p, {
          tollgate: { deployment: p.deployment },
          ...(p.tls ? { 'envoy.transport_socket_match': { provider: `priority-${i}` } } : {}),
        }),
      ],
    })),
  };
  return c;
}

function applyRetry(rp: Obj, r: RenderRetry): void {
  if (r.retryOn) rp.retry_on = r.retryOn.join(',');
  if (r.retriableStatusCodes) rp.retriable_status_codes = r.retriableStatusCodes;
  if (r.numRetries !== undefined) rp.num_retries = r.numRetries;
  if (r.perTryTimeoutMs !== undefined) rp.per_try_timeout = seconds(r.perTryTimeoutMs);
  if (r.previousPriorities === false) delete rp.retry_priority;
  if (r.backOffMs !== undefined) rp.retry_back_off = { base_interval: seconds(r.backOffMs), max_interval: seconds(r.backOffMs * 10) };
}

const isExtProc = (f: unknown): boolean =>
  String(obj(obj(f, 'upstream filter').typed_config, 'upstream filter config')['@type']).endsWith('ext_proc.v3.ExternalProcessor');

/** A cluster's upstream ext_proc filters (their typed_config, in place). */
function upstreamExtProcs(cluster: Obj): Obj[] {
  const filters = (protocolOptions(cluster)?.http_filters as unknown[] | undefined) ?? [];
  return filters.filter(isExtProc).map((f) => obj(obj(f, 'upstream filter').typed_config, 'upstream filter config'));
}

function extProcFilters(cfg: Obj): Obj[] {
  const out: Obj[] = [];
  for (const f of arr(hcm(cfg).http_filters, 'http_filters')) {
    const fo = obj(f, 'http_filter');
    if (fo.name === 'envoy.filters.http.ext_proc') out.push(obj(fo.typed_config, 'ext_proc'));
  }
  for (const c of arr(obj(cfg.static_resources, 'static_resources').clusters, 'clusters')) out.push(...upstreamExtProcs(obj(c, 'cluster')));
  return out;
}

export function renderEnvoyConfig(shipped: string, opts: RenderOptions): string {
  if (opts.sharedSecret !== undefined && !/^[\x21-\x7e]+$/.test(opts.sharedSecret)) throw new RenderError('shared secret: printable ASCII without spaces only');
  const source = opts.sharedSecret === undefined ? shipped : shipped.split(SHARED_SECRET_PLACEHOLDER).join(opts.sharedSecret);
  const cfg = obj(parse(source), 'document');
  const sr = obj(cfg.static_resources, 'static_resources');
  const listener = obj(arr(sr.listeners, 'listeners')[0], 'listener');
  listener.address = { socket_address: { address: opts.listener.address, port_value: opts.listener.port } };
  if (opts.bufferLimitBytes !== undefined) listener.per_connection_buffer_limit_bytes = opts.bufferLimitBytes;
  cfg.admin = { address: { socket_address: { address: opts.admin.address, port_value: opts.admin.port } } };

  const h = hcm(cfg);
  for (const vh of arr(obj(h.route_config, 'route_config').virtual_hosts, 'virtual_hosts'))
    for (const r of arr(obj(vh, 'virtual_host').routes, 'routes')) {
      const route = obj(r, 'route').route as Obj | undefined;
      if (route && opts.routeTimeoutMs !== undefined) route.timeout = seconds(opts.routeTimeoutMs);
      if (route?.retry_policy && opts.retry) applyRetry(obj(route.retry_policy, 'retry_policy'), opts.retry);
    }
  const filters = arr(h.http_filters, 'http_filters');
  const router = filters.map((f) => obj(f, 'http_filter')).find((f) => f.name === 'envoy.filters.http.ext_proc');
  if (!router) throw new RenderError('envoy config: no envoy.filters.http.ext_proc filter');
  const ep = obj(router.typed_config, 'ext_proc');
  const x = opts.extProc ?? {};
  if (x.messageTimeoutMs !== undefined) ep.message_timeout = seconds(x.messageTimeoutMs);
  if (x.maxMessageTimeoutMs !== undefined) ep.max_message_timeout = seconds(x.maxMessageTimeoutMs);
  if (x.failureModeAllow !== undefined) ep.failure_mode_allow = x.failureModeAllow;
  if (x.allowModeOverride !== undefined) ep.allow_mode_override = x.allowModeOverride;
  if (x.processingMode) ep.processing_mode = { ...obj(ep.processing_mode, 'processing_mode'), ...x.processingMode };
  if (opts.jwt) {
    const jwt = shippedJwtFilter(source);
    const cfgJwt = obj(jwt.typed_config, 'jwt_authn config');
    for (const p of Object.values(obj(cfgJwt.providers, 'jwt_authn providers'))) {
      const po = obj(p, 'jwt provider');
      delete po.remote_jwks;
      po.local_jwks = { inline_string: opts.jwt.jwks };
      if (opts.jwt.issuer !== undefined) po.issuer = opts.jwt.issuer;
      if (opts.jwt.audiences !== undefined) po.audiences = opts.jwt.audiences;
    }
    filters.splice(filters.indexOf(router), 0, jwt);
  }

  const clusters = arr(sr.clusters, 'clusters').map((c) => obj(c, 'cluster'));
  const byName = new Map(clusters.map((c) => [String(c.name), c]));
  const tollgate = byName.get('tollgate');
  if (!tollgate) throw new RenderError('envoy config: no `tollgate` cluster');
  tollgate.type = 'STATIC';
  delete tollgate.dns_lookup_family;
  tollgate.load_assignment = { cluster_name: 'tollgate', endpoints: [{ lb_endpoints: opts.tollgate.map((t) => endpoint(t)) }] };

  const chainTemplate = clusters.find((c) => String(c.name).startsWith('tgc.'));
  const out: Obj[] = [tollgate];
  for (const [name, u] of Object.entries(opts.clusters)) {
    const shipped = byName.get(name);
    const base = shipped ?? byName.get(u.template ?? 'openai');
    if (!base) throw new RenderError(`envoy config: no cluster ${u.template ?? 'openai'} to copy for ${name}`);
    const c = clone(base);
    pointAt(c, name, u);
    out.push(c);
  }
  for (const [name, ch] of Object.entries(opts.chains ?? {})) {
    const t = ch.template ? byName.get(ch.template) : chainTemplate;
    if (!t) throw new RenderError(`envoy config: no chain cluster to copy for ${name}`);
    out.push(buildChain(t, name, ch, opts.upstreamExtProc));
  }
  if (opts.dropUnlisted === false)
    for (const c of clusters) if (!out.some((o) => o.name === c.name)) out.push(c);
  sr.clusters = out;

  if (x.initialMetadata) {
    const md = Object.entries(x.initialMetadata).map(([key, value]) => ({ key, value }));
    for (const f of extProcFilters(cfg)) {
      const gs = obj(f.grpc_service, 'grpc_service');
      const have = (gs.initial_metadata as Obj[] | undefined) ?? [];
      gs.initial_metadata = [...have.filter((m) => !x.initialMetadata![String(m.key)]), ...md];
    }
  }
  return stringify(cfg, { lineWidth: 0 });
}

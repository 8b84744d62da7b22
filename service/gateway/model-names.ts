// Client-chosen model names: refused unless the catalog accepts them (400 before anything records
// them), and scrubbed of anything a redaction detector recognises before they reach lineage or
// Envoy's access log (a wildcard model passes any name of the allowed characters through).
import { GatewayError } from '../errors.ts';
import { BUILTIN_DETECTORS, Scanner } from '../redaction/index.ts';
import { MODEL_NAME_CHARS, type Catalog } from '../routing/catalog.ts';

const scanner = new Scanner(BUILTIN_DETECTORS);

/** Throws 400 `invalid_model` for a `model` / `models[i]` the catalog does not accept. Never echoes the name. */
export function checkModelNames(catalog: Catalog, body: Record<string, unknown>): void {
  const check = (v: unknown, param: string): void => {
    if (typeof v !== 'string' || v === '' || catalog.acceptsName(v)) return; // shape errors are the schema's
    throw new GatewayError('invalid_request', `'${param}' is not a valid model name: it may only contain ${MODEL_NAME_CHARS}.`, {
      code: 'invalid_model',
      param,
    });
  };
  check(body.model, 'model');
  if (Array.isArray(body.models)) body.models.forEach((m, i) => check(m, `models[${i}]`));
}

/** `text` with every detector finding replaced by `[LABEL]`. */
function scrub(text: string): string {
  const found = scanner.scan(text);
  if (found.length === 0) return text;
  let out = '';
  let at = 0;
  for (const f of found) {
    out += `${text.slice(at, f.start)}[${f.detector.label}]`;
    at = f.end;
  }
  return out + text.slice(at);
}

/**
 * Per request: the lineage-safe form of each client-chosen name seen. Configured names and aliases
 * are the operator's text and stay as they are; other names (wildcard matches) are scrubbed.
 */
export class ModelNameScrubber {
  private readonly scrubbed = new Map<string, string>();

  constructor(private readonly catalog: Catalog) {}

  /** Whether any name seen so far was scrubbed (text() then has something to replace). */
  get changed(): boolean {
    return this.scrubbed.size > 0;
  }

  /** The name as lineage and access logs may carry it. */
  name(n: string): string;
  name(n: string | undefined): string | undefined;
  name(n: string | undefined): string | undefined {
    if (n === undefined || n === '' || this.catalog.isConfiguredName(n)) return n;
    const known = this.scrubbed.get(n);
    if (known !== undefined) return known;
    const safe = scrub(n);
    if (safe !== n) this.scrubbed.set(n, safe);
    return safe;
  }

  /** A wildcard deployment's upstream model holds the client's suffix: scrubbed like a name. */
  upstream(upstreamModel: string, modelName: string): string {
    return this.catalog.isConfiguredName(modelName) ? upstreamModel : this.name(upstreamModel);
  }

  /** `text` (a rule message, a budget scope key) with every scrubbed name replaced by its safe form. */
  text(t: string): string;
  text(t: string | undefined): string | undefined;
  text(t: string | undefined): string | undefined {
    if (t === undefined || this.scrubbed.size === 0) return t;
    let out = t;
    for (const [raw, safe] of this.scrubbed) out = out.split(raw).join(safe);
    return out;
  }
}

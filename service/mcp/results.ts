// What Tollgate changes in an MCP server's answers: tools/list keeps only the tools the caller may
// call, and results are redacted (mcpRedact with `results: true`). Values are never logged.

/** Keys whose string values are structure, not content (never redacted). */
const STRUCTURAL = new Set(['type', 'mimeType', 'uri', 'name', '_meta', 'annotations']);

type Json = unknown;

/** Every content string of a result, rewritten by `text` (depth-bounded; structure untouched). */
export function redactResult(result: Json, text: (s: string) => string, depth = 0): Json {
  if (depth > 64) return result;
  if (typeof result === 'string') return text(result);
  if (Array.isArray(result)) return result.map((x) => redactResult(x, text, depth + 1));
  if (result !== null && typeof result === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(result)) out[k] = STRUCTURAL.has(k) ? v : redactResult(v, text, depth + 1);
    return out;
  }
  return result;
}

/**
 * A tools/list result with only the tools `visible` allows; returns the result and how many were
 * hidden. A result without a `tools` array is returned as is.
 */
export function filterTools(result: Json, visible: (name: string) => boolean): { result: Json; hidden: number } {
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return { result, hidden: 0 };
  const r = result as Record<string, unknown>;
  if (!Array.isArray(r.tools)) return { result, hidden: 0 };
  const kept = r.tools.filter((t) => {
    const name = t !== null && typeof t === 'object' ? (t as { name?: unknown }).name : undefined;
    // A tool without a name cannot be judged: hidden (fail closed).
    return typeof name === 'string' && visible(name);
  });
  return { result: { ...r, tools: kept }, hidden: r.tools.length - kept.length };
}

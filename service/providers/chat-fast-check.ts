// A hand-written proof that an OpenAI Chat Completions body is valid, for the common shape only. zod stays the
// validator of record: this never rejects anything, it answers "proven valid" or "ask zod". It exists because
// zod costs ~4 µs and a deep copy per validation on the hot path, twice per request (parse, then translation).
//
// "Proven" means more than valid: zod's output for the body would be the body itself, key for key IN THE SAME
// ORDER (zod writes declared keys in schema order, then undeclared ones in input order), so the body can be
// serialized as is and yield the bytes the zod copy would. Anything unusual (content parts, tools, response
// formats, tool_choice objects, keys out of schema order, `__proto__`, undefined values) answers false and goes
// to zod.
// test/providers/chat-fast-check.test.ts compares this with zod on a table of valid and invalid bodies.

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const nullish = (v: unknown): boolean => v === null;
const num = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max;
const safeInt = (v: unknown, min: number, max: number): boolean => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const MAX = Number.MAX_SAFE_INTEGER;
/** Like Array.prototype.every, but holes count as undefined (as zod sees them). */
function all(a: readonly unknown[], ok: (v: unknown) => boolean): boolean {
  for (let i = 0; i < a.length; i++) if (!ok(a[i])) return false;
  return true;
}
const REASONING = new Set(['minimal', 'low', 'medium', 'high']);
const TOOL_CHOICE = new Set(['none', 'auto', 'required']);

/** Value checks for the top-level keys this proof handles, in OpenAIChatBody's declaration order. */
const TOP: ReadonlyArray<readonly [string, (v: unknown) => boolean]> = [
  ['model', (v) => typeof v === 'string' && v.length > 0],
  ['messages', (v) => Array.isArray(v) && v.length > 0 && all(v, message)],
  ['stream', (v) => nullish(v) || typeof v === 'boolean'],
  ['stream_options', (v) => nullish(v) || (isObj(v) && streamOptions(v))],
  ['max_tokens', (v) => nullish(v) || safeInt(v, 1, MAX)],
  ['max_completion_tokens', (v) => nullish(v) || safeInt(v, 1, MAX)],
  ['temperature', (v) => nullish(v) || num(v, 0, 2)],
  ['top_p', (v) => nullish(v) || num(v, 0, 1)],
  ['top_k', (v) => nullish(v) || safeInt(v, 0, MAX)],
  ['n', (v) => nullish(v) || safeInt(v, 1, 128)],
  ['stop', (v) => nullish(v) || typeof v === 'string' || (Array.isArray(v) && v.length <= 16 && all(v, (s) => typeof s === 'string'))],
  ['presence_penalty', (v) => nullish(v) || num(v, -2, 2)],
  ['frequency_penalty', (v) => nullish(v) || num(v, -2, 2)],
  ['logit_bias', () => false],
  ['logprobs', (v) => nullish(v) || typeof v === 'boolean'],
  ['top_logprobs', (v) => nullish(v) || safeInt(v, 0, 20)],
  ['seed', (v) => nullish(v) || safeInt(v, -MAX, MAX)],
  ['tools', (v) => nullish(v) || (Array.isArray(v) && all(v, tool))],
  ['tool_choice', (v) => nullish(v) || (typeof v === 'string' && TOOL_CHOICE.has(v))],
  ['parallel_tool_calls', (v) => nullish(v) || typeof v === 'boolean'],
  ['response_format', () => false],
  ['user', (v) => nullish(v) || typeof v === 'string'],
  ['reasoning_effort', (v) => nullish(v) || (typeof v === 'string' && REASONING.has(v))],
];
const TOP_INDEX = new Map(TOP.map(([k], i) => [k, i]));

/**
 * The object's own keys hold the declared keys in declaration order, before any undeclared key; no `__proto__` (zod
 * drops it), no undefined value (kept by zod but a different shape to prove). A plain object only: for…in then
 * visits exactly its own keys, in Object.keys order, since provenOpenAIChat answers false up front when
 * Object.prototype has an enumerable key. Why for…in: Object.keys copied a key array per object, per request.
 */
function ordered(o: Obj, index: ReadonlyMap<string, number>): boolean {
  if (Object.getPrototypeOf(o) !== Object.prototype) return false;
  let last = -1;
  let undeclared = false;
  for (const k in o) {
    if (k === '__proto__' || o[k] === undefined) return false;
    const at = index.get(k);
    if (at === undefined) {
      undeclared = true;
      continue;
    }
    if (undeclared || at < last) return false;
    last = at;
  }
  return true;
}

function streamOptions(o: Obj): boolean {
  const keys = Object.keys(o);
  return keys.length === 0 || (keys.length === 1 && keys[0] === 'include_usage' && typeof o.include_usage === 'boolean');
}

const PLAIN = new Map([['role', 0], ['content', 1], ['name', 2]]);
const ASSISTANT = new Map([['role', 0], ['content', 1], ['tool_calls', 2], ['refusal', 3], ['name', 4]]);
const TOOL = new Map([['role', 0], ['content', 1], ['tool_call_id', 2]]);
const CALL = new Map([['id', 0], ['type', 1], ['function', 2]]);
const FN = new Map([['name', 0], ['arguments', 1]]);

const optStr = (m: Obj, k: string): boolean => !(k in m) || typeof m[k] === 'string';

const FUNCTION_TOOL = new Map([['type', 0], ['function', 1]]);
const TOOL_FN = new Map([['name', 0], ['description', 1], ['parameters', 2], ['strict', 3]]);

/** A JSON-Schema `parameters` record: zod copies its own keys in order and keeps the values as they are. */
function record(v: unknown): boolean {
  if (!isObj(v) || Object.getPrototypeOf(v) !== Object.prototype) return false;
  for (const k in v) if (k === '__proto__' || v[k] === undefined || !Object.hasOwn(v, k)) return false;
  return true;
}

/** A function tool: {type: 'function', function: {name, description?, parameters?, strict?}}. */
function tool(t: unknown): boolean {
  if (!isObj(t) || t.type !== 'function' || !ordered(t, FUNCTION_TOOL)) return false;
  const f = t.function;
  if (!isObj(f) || !ordered(f, TOOL_FN)) return false;
  if (typeof f.name !== 'string' || f.name.length === 0 || !optStr(f, 'description')) return false;
  if ('parameters' in f && !record(f.parameters)) return false;
  return !('strict' in f) || f.strict === null || typeof f.strict === 'boolean';
}

function toolCall(c: unknown): boolean {
  if (!isObj(c)) return false;
  const f = c.function;
  return (
    ordered(c, CALL) &&
    typeof c.id === 'string' &&
    c.type === 'function' &&
    isObj(f) &&
    ordered(f, FN) &&
    typeof f.name === 'string' &&
    typeof f.arguments === 'string'
  );
}

/** One message of the common kinds, with string (or, for the assistant, null/absent) content. */
function message(m: unknown): boolean {
  if (!isObj(m)) return false;
  switch (m.role) {
    case 'system':
    case 'developer':
    case 'user':
      return ordered(m, PLAIN) && typeof m.content === 'string' && optStr(m, 'name');
    case 'tool':
      return ordered(m, TOOL) && typeof m.content === 'string' && typeof m.tool_call_id === 'string';
    case 'assistant': {
      if (!ordered(m, ASSISTANT)) return false;
      if ('content' in m && m.content !== null && typeof m.content !== 'string') return false;
      if ('refusal' in m && m.refusal !== null && typeof m.refusal !== 'string') return false;
      if ('tool_calls' in m && !(Array.isArray(m.tool_calls) && all(m.tool_calls, toolCall))) return false;
      return optStr(m, 'name');
    }
    default:
      return false;
  }
}

/**
 * True only when OpenAIChatBody.safeParse(body) succeeds with data equal to `body` in values and key order.
 * False says nothing: validate with zod.
 */
export function provenOpenAIChat(body: Obj): boolean {
  for (const _ in Object.prototype) return false; // polluted: for…in would visit inherited keys (see ordered)
  if (!ordered(body, TOP_INDEX)) return false;
  if (!('model' in body) || !('messages' in body)) return false;
  for (const k in body) {
    const at = TOP_INDEX.get(k);
    if (at !== undefined && !TOP[at]![1](body[k])) return false;
  }
  return true;
}

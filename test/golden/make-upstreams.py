#!/usr/bin/env python3
"""Writes the *.upstream and *.case.json files of the golden streaming tests.

The upstream streams reproduce what each provider sends on the wire (field order, ids, keep-alive pings,
usage placement, Azure's prompt_filter_results chunk, Bedrock's binary eventstream with its `p` padding field).
Bedrock frames are encoded HERE, independently of service/providers/eventstream.ts, so the golden test also
cross-checks our decoder. *.expected files are written by the test itself with GOLDEN_UPDATE=1 and reviewed by hand.

Run: python3 test/golden/make-upstreams.py
"""
import base64, json, os, struct, zlib

ROOT = os.path.dirname(os.path.abspath(__file__))

def j(o):
    return json.dumps(o, separators=(',', ':'), ensure_ascii=False)

def sse(o, event=None, nl='\n'):
    s = (f'event: {event}{nl}' if event else '') + f'data: {o if isinstance(o, str) else j(o)}{nl}{nl}'
    return s

def write(pair, name, upstream, case):
    d = os.path.join(ROOT, pair)
    os.makedirs(d, exist_ok=True)
    mode = 'wb' if isinstance(upstream, bytes) else 'w'
    with open(os.path.join(d, name + '.upstream'), mode) as f:
        f.write(upstream)
    with open(os.path.join(d, name + '.case.json'), 'w') as f:
        f.write(json.dumps(case, indent=2, ensure_ascii=False) + '\n')

# ------------------------------------------------------------------ OpenAI upstream
def oa_chunks(cid, model, deltas, finish, usage, include_usage=True, extra=None):
    base = {"id": cid, "object": "chat.completion.chunk", "created": 1741569952, "model": model,
            "service_tier": "default", "system_fingerprint": "fp_eb9dce56a8"}
    out = ''
    for d in deltas:
        c = dict(base, choices=[{"index": 0, "delta": d, "logprobs": None, "finish_reason": None}])
        if include_usage: c["usage"] = None
        c["obfuscation"] = "Xy9"
        out += sse(c)
    c = dict(base, choices=[{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}])
    if include_usage: c["usage"] = None
    out += sse(c)
    if include_usage:
        out += sse(dict(base, choices=[], usage=usage))
    out += 'data: [DONE]\n\n'
    return out

OA_USAGE = {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
text_deltas = [{"role": "assistant", "content": "", "refusal": None}, {"content": "Hello"}, {"content": "!"},
               {"content": " How can I help"}, {"content": " you today? 👋"}]
up = oa_chunks("chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "gpt-4o-2024-08-06", text_deltas, "stop", OA_USAGE)
req = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello"}], "stream": True}
write('openai-openai', 'text-default', up, {"client": "openai", "provider": "openai", "request": req,
      "usage": {"inputTokens": 19, "outputTokens": 10}, "finishReason": "stop"})
write('openai-openai', 'text-include-usage', up, {"client": "openai", "provider": "openai",
      "request": dict(req, stream_options={"include_usage": True}),
      "usage": {"inputTokens": 19, "outputTokens": 10}, "finishReason": "stop"})

tool_deltas = [{"role": "assistant", "content": None, "refusal": None},
               {"tool_calls": [{"index": 0, "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]},
               {"tool_calls": [{"index": 0, "function": {"arguments": "{\"lo"}}]},
               {"tool_calls": [{"index": 0, "function": {"arguments": "cation\": \"Paris\"}"}}]},
               {"tool_calls": [{"index": 1, "id": "call_ABdmO9pD3xa9XTPNJ32zg2hZ", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
               {"tool_calls": [{"index": 1, "function": {"arguments": "{\"tz\": \"Europe/Paris\"}"}}]}]
usage_cached = dict(OA_USAGE, prompt_tokens=1450, total_tokens=1490, completion_tokens=40,
                    prompt_tokens_details={"cached_tokens": 1280, "audio_tokens": 0})
up = oa_chunks("chatcmpl-C1toolsxyz", "gpt-4o-2024-08-06", tool_deltas, "tool_calls", usage_cached)
write('openai-openai', 'tool-calls', up, {"client": "openai", "provider": "openai",
      "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "Weather and time in Paris?"}], "stream": True,
                  "stream_options": {"include_usage": True},
                  "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
                            {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]},
      "usage": {"inputTokens": 1450, "outputTokens": 40, "cachedInputTokens": 1280}, "finishReason": "tool_calls"})

# Azure: a first chunk with empty choices carrying prompt_filter_results, content_filter_results on each choice.
az = sse({"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}}}]})
for d, fin in [({"content": "", "refusal": None, "role": "assistant"}, None), ({"content": "Bonjour"}, None), ({"content": " !"}, None), ({}, "stop")]:
    az += sse({"choices": [{"content_filter_results": {} if fin or d.get("role") else {"hate": {"filtered": False, "severity": "safe"}},
                            "delta": d, "finish_reason": fin, "index": 0, "logprobs": None}],
               "created": 1741570000, "id": "chatcmpl-AzureStream1", "model": "gpt-4o-2024-11-20", "object": "chat.completion.chunk",
               "system_fingerprint": "fp_ee1d74bde0", "usage": None})
az += sse({"choices": [], "created": 1741570000, "id": "chatcmpl-AzureStream1", "model": "gpt-4o-2024-11-20", "object": "chat.completion.chunk",
           "system_fingerprint": "fp_ee1d74bde0", "usage": {"completion_tokens": 3, "prompt_tokens": 11, "total_tokens": 14,
           "completion_tokens_details": {"reasoning_tokens": 0}, "prompt_tokens_details": {"cached_tokens": 0}}})
az += 'data: [DONE]\n\n'
write('openai-azure', 'content-filter-chunks', az, {"client": "openai", "provider": "azure",
      "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello in French"}], "stream": True},
      "usage": {"inputTokens": 11, "outputTokens": 3}, "finishReason": "stop"})

# ------------------------------------------------------------------ Anthropic upstream
def an_start(mid, usage):
    return sse({"type": "message_start", "message": {"id": mid, "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
                "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}}, 'message_start')

def an(type_, nl='\n', **kw):
    return sse(dict({"type": type_}, **kw), type_, nl)

def anthropic_text(nl='\n'):
    s = sse({"type": "message_start", "message": {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
             "model": "claude-sonnet-4-20250514", "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {"input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048, "output_tokens": 1, "service_tier": "standard"}}},
            'message_start', nl)
    s += an('content_block_start', nl, index=0, content_block={"type": "text", "text": ""})
    s += an('ping', nl)
    for t in ["Hello", "! How can", " I help you", " today? 👋"]:
        s += an('content_block_delta', nl, index=0, delta={"type": "text_delta", "text": t})
    s += an('content_block_stop', nl, index=0)
    s += an('message_delta', nl, delta={"stop_reason": "end_turn", "stop_sequence": None}, usage={"output_tokens": 15})
    s += an('message_stop', nl)
    return s

oa_req = {"model": "claude", "messages": [{"role": "system", "content": "Be friendly."}, {"role": "user", "content": "Say hello"}],
          "stream": True, "stream_options": {"include_usage": True}}
an_usage = {"inputTokens": 2073, "outputTokens": 15, "cachedInputTokens": 2048}
write('openai-anthropic', 'text', anthropic_text(), {"client": "openai", "provider": "anthropic", "request": oa_req,
      "usage": an_usage, "finishReason": "stop"})
write('openai-anthropic', 'text-crlf', anthropic_text('\r\n'), {"client": "openai", "provider": "anthropic", "request": oa_req,
      "usage": an_usage, "finishReason": "stop", "sameExpectedAs": "text"})

s = an_start("msg_014p7gG3wDgGV9EUtLvnow3U", {"input_tokens": 472, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 2})
s += an('content_block_start', index=0, content_block={"type": "text", "text": ""})
s += an('content_block_delta', index=0, delta={"type": "text_delta", "text": "Let me check both."})
s += an('content_block_stop', index=0)
s += an('content_block_start', index=1, content_block={"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}})
for p in ["", "{\"locat", "ion\": \"San Fra", "ncisco, CA\"", ", \"unit\": \"fah", "renheit\"}"]:
    s += an('content_block_delta', index=1, delta={"type": "input_json_delta", "partial_json": p})
s += an('content_block_stop', index=1)
s += an('content_block_start', index=2, content_block={"type": "tool_use", "id": "toolu_02T1x1fJ34qAmk2tNTrN7Up7", "name": "get_time", "input": {}})
s += an('content_block_delta', index=2, delta={"type": "input_json_delta", "partial_json": "{\"tz\": \"America/Los_Angeles\"}"})
s += an('content_block_stop', index=2)
s += an('message_delta', delta={"stop_reason": "tool_use", "stop_sequence": None}, usage={"output_tokens": 89})
s += an('message_stop')
write('openai-anthropic', 'tool-use', s, {"client": "openai", "provider": "anthropic",
      "request": {"model": "claude", "messages": [{"role": "user", "content": "Weather and time in SF?"}], "stream": True,
                  "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
                            {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]},
      "usage": {"inputTokens": 472, "outputTokens": 89}, "finishReason": "tool_calls"})

s = an_start("msg_01JsonModeAbc", {"input_tokens": 60, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1})
s += an('content_block_start', index=0, content_block={"type": "tool_use", "id": "toolu_01Json", "name": "json_response", "input": {}})
for p in ["", "{\"answer\"", ": 42, \"unit\": ", "\"none\"}"]:
    s += an('content_block_delta', index=0, delta={"type": "input_json_delta", "partial_json": p})
s += an('content_block_stop', index=0)
s += an('message_delta', delta={"stop_reason": "tool_use", "stop_sequence": None}, usage={"output_tokens": 20})
s += an('message_stop')
write('openai-anthropic', 'json-mode', s, {"client": "openai", "provider": "anthropic",
      "request": {"model": "claude", "messages": [{"role": "user", "content": "Answer as JSON"}], "stream": True, "response_format": {"type": "json_object"}},
      "usage": {"inputTokens": 60, "outputTokens": 20}, "finishReason": "stop"})

s = an_start("msg_01Overloaded", {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1})
s += an('content_block_start', index=0, content_block={"type": "text", "text": ""})
s += an('content_block_delta', index=0, delta={"type": "text_delta", "text": "Once upon"})
s += sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, 'error')
write('openai-anthropic', 'overloaded-error', s, {"client": "openai", "provider": "anthropic",
      "request": {"model": "claude", "messages": [{"role": "user", "content": "Tell a story"}], "stream": True},
      "usage": {"inputTokens": 10, "outputTokens": 1}, "finishReason": None})

write('anthropic-anthropic', 'text', anthropic_text(), {"client": "anthropic", "provider": "anthropic",
      "request": {"model": "claude", "max_tokens": 1024, "system": "Be friendly.", "messages": [{"role": "user", "content": "Say hello"}], "stream": True},
      "usage": an_usage, "finishReason": "end_turn", "expectedIsUpstream": True})

# ------------------------------------------------------------------ OpenAI upstream for Anthropic clients
tool_text_deltas = [{"role": "assistant", "content": "", "refusal": None}, {"content": "Checking"}, {"content": " the weather."}] + tool_deltas[1:4]
up = oa_chunks("chatcmpl-C2anthropicclient", "gpt-4o-2024-08-06", tool_text_deltas, "tool_calls",
               dict(OA_USAGE, prompt_tokens=300, completion_tokens=25, total_tokens=325, prompt_tokens_details={"cached_tokens": 256, "audio_tokens": 0}))
write('anthropic-openai', 'tool-use', up, {"client": "anthropic", "provider": "openai",
      "request": {"model": "gpt", "max_tokens": 512, "messages": [{"role": "user", "content": "Weather in Paris?"}], "stream": True,
                  "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]},
      "usage": {"inputTokens": 300, "outputTokens": 25, "cachedInputTokens": 256}, "finishReason": "tool_use"})

# ------------------------------------------------------------------ Gemini upstream
def gm(parts, finish=None, usage=None, rid="Zq3fZ5iNHbWrmecP4ZTQ4Qo"):
    cand = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish: cand["finishReason"] = finish
    o = {"candidates": [cand]}
    o["usageMetadata"] = usage or {"promptTokenCount": 9, "totalTokenCount": 9, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 9}]}
    o["modelVersion"] = "gemini-2.5-flash"
    o["responseId"] = rid
    return sse(o, nl='\r\n')  # Google's SSE uses CRLF line endings

g = gm([{"text": "Hello"}]) + gm([{"text": "! How can I help"}]) + gm([{"text": " you today?"}], "STOP",
      {"promptTokenCount": 9, "candidatesTokenCount": 8, "totalTokenCount": 117, "cachedContentTokenCount": 4, "thoughtsTokenCount": 100,
       "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 9}]})
gem_req = {"model": "gemini", "messages": [{"role": "user", "content": "Say hello"}], "stream": True, "stream_options": {"include_usage": True}}
write('openai-gemini', 'text', g, {"client": "openai", "provider": "gemini", "request": gem_req,
      "usage": {"inputTokens": 9, "outputTokens": 108, "cachedInputTokens": 4, "reasoningTokens": 100}, "finishReason": "stop"})

g = gm([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}, {"functionCall": {"name": "get_time", "args": {"tz": "Europe/Paris"}}}], "STOP",
       {"promptTokenCount": 40, "candidatesTokenCount": 12, "totalTokenCount": 52}, rid="GmFnCall01")
write('openai-gemini', 'function-calls', g, {"client": "openai", "provider": "gemini",
      "request": {"model": "gemini", "messages": [{"role": "user", "content": "Weather and time in Paris?"}], "stream": True,
                  "tools": [{"type": "function", "function": {"name": "get_weather"}}, {"type": "function", "function": {"name": "get_time"}}]},
      "usage": {"inputTokens": 40, "outputTokens": 12}, "finishReason": "tool_calls"})

g = gm([{"text": "Bonjour"}], rid="GmAnth01") + gm([{"text": " tout le monde."}], "STOP", {"promptTokenCount": 7, "candidatesTokenCount": 5, "totalTokenCount": 12}, rid="GmAnth01")
write('anthropic-gemini', 'text', g, {"client": "anthropic", "provider": "gemini",
      "request": {"model": "gemini", "max_tokens": 100, "messages": [{"role": "user", "content": "Say hello in French"}], "stream": True},
      "usage": {"inputTokens": 7, "outputTokens": 5}, "finishReason": "end_turn"})

# ------------------------------------------------------------------ Bedrock eventstream (independent encoder)
def es_frame(headers, payload):
    hb = b''
    for k, v in headers.items():
        kb = k.encode(); vb = v.encode()
        hb += struct.pack('>B', len(kb)) + kb + b'\x07' + struct.pack('>H', len(vb)) + vb
    total = 12 + len(hb) + len(payload) + 4
    prelude = struct.pack('>II', total, len(hb))
    prelude += struct.pack('>I', zlib.crc32(prelude) & 0xffffffff)
    msg = prelude + hb + payload
    return msg + struct.pack('>I', zlib.crc32(msg) & 0xffffffff)

PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
def bev(t, payload, n=[0]):
    n[0] += 1
    payload = dict(payload, p=PAD[: 5 + (n[0] * 7) % 40])
    return es_frame({":event-type": t, ":content-type": "application/json", ":message-type": "event"}, j(payload).encode())

b = bev("messageStart", {"role": "assistant"})
for t in ["Hello", "! How can", " I help you", " today?"]:
    b += bev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}})
b += bev("contentBlockStop", {"contentBlockIndex": 0})
b += bev("messageStop", {"stopReason": "end_turn"})
b += bev("metadata", {"usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 1066, "cacheReadInputTokens": 1024, "cacheWriteInputTokens": 0}, "metrics": {"latencyMs": 812}})
br_req = {"model": "claude-bedrock", "messages": [{"role": "user", "content": "Say hello"}], "stream": True, "stream_options": {"include_usage": True}}
write('openai-bedrock', 'text', b, {"client": "openai", "provider": "bedrock", "request": br_req,
      "usage": {"inputTokens": 1054, "outputTokens": 12, "cachedInputTokens": 1024}, "finishReason": "stop"})

def bedrock_tool():
    b = bev("messageStart", {"role": "assistant"})
    b += bev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Checking."}})
    b += bev("contentBlockStop", {"contentBlockIndex": 0})
    b += bev("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather"}}})
    for p in ["{\"city\":", " \"Paris\"}"]:
        b += bev("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": p}}})
    b += bev("contentBlockStop", {"contentBlockIndex": 1})
    b += bev("messageStop", {"stopReason": "tool_use"})
    b += bev("metadata", {"usage": {"inputTokens": 410, "outputTokens": 55, "totalTokens": 465}, "metrics": {"latencyMs": 1290}})
    return b

write('openai-bedrock', 'tool-use', bedrock_tool(), {"client": "openai", "provider": "bedrock",
      "request": {"model": "claude-bedrock", "messages": [{"role": "user", "content": "Weather in Paris?"}], "stream": True,
                  "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]},
      "usage": {"inputTokens": 410, "outputTokens": 55}, "finishReason": "tool_calls"})

b = bev("messageStart", {"role": "assistant"})
b += bev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Once"}})
b += es_frame({":exception-type": "throttlingException", ":content-type": "application/json", ":message-type": "exception"},
              j({"message": "Too many tokens, please wait before trying again."}).encode())
write('openai-bedrock', 'throttled', b, {"client": "openai", "provider": "bedrock",
      "request": {"model": "claude-bedrock", "messages": [{"role": "user", "content": "Tell a story"}], "stream": True},
      "usage": None, "finishReason": None})

write('anthropic-bedrock', 'tool-use', bedrock_tool(), {"client": "anthropic", "provider": "bedrock",
      "request": {"model": "claude-bedrock", "max_tokens": 512, "messages": [{"role": "user", "content": "Weather in Paris?"}], "stream": True,
                  "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]},
      "usage": {"inputTokens": 410, "outputTokens": 55}, "finishReason": "tool_use"})

# ------------------------------------------------------------------ Responses API clients (op: responses)
# Translated pairs reuse the provider streams above (the provider sends the same bytes whatever the client API).
def existing(pair, name):
    with open(os.path.join(ROOT, pair, name + '.upstream'), 'rb') as f:
        return f.read()

TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
write('responses-anthropic', 'tool-use', existing('openai-anthropic', 'tool-use'), {"client": "openai", "op": "responses", "provider": "anthropic",
      "request": {"model": "claude", "instructions": "Use tools.", "input": "Weather and time in SF?", "stream": True,
                  "tools": [TOOL, dict(TOOL, name="get_time")]},
      "usage": {"inputTokens": 472, "outputTokens": 89}, "finishReason": "tool_calls"})
write('responses-anthropic', 'overloaded-error', existing('openai-anthropic', 'overloaded-error'), {"client": "openai", "op": "responses", "provider": "anthropic",
      "request": {"model": "claude", "input": "Tell a story", "stream": True}, "usage": {"inputTokens": 10, "outputTokens": 1}, "finishReason": None})
write('responses-gemini', 'function-calls', existing('openai-gemini', 'function-calls'), {"client": "openai", "op": "responses", "provider": "gemini",
      "request": {"model": "gemini", "input": [{"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris and Rome?"}]}], "stream": True,
                  "tools": [TOOL]},
      "usage": json.load(open(os.path.join(ROOT, 'openai-gemini', 'function-calls.case.json')))["usage"], "finishReason": "tool_calls"})
write('responses-bedrock', 'tool-use', existing('openai-bedrock', 'tool-use'), {"client": "openai", "op": "responses", "provider": "bedrock",
      "request": {"model": "claude-bedrock", "input": "Weather in Paris?", "stream": True, "tools": [TOOL], "max_output_tokens": 512},
      "usage": {"inputTokens": 410, "outputTokens": 55}, "finishReason": "tool_calls"})

# OpenAI's own Responses stream (passthrough): a reasoning item, text, a function call, usage with cached + reasoning.
def rs(events):
    out = ''
    for i, (t, o) in enumerate(events):
        out += sse(dict({"type": t, "sequence_number": i}, **o), t)
    return out

RID = "resp_68c1f0a2b3d48190a1b2c3d4e5f60718"
base = {"id": RID, "object": "response", "created_at": 1757540514, "status": "in_progress", "background": False, "error": None,
        "incomplete_details": None, "instructions": None, "max_output_tokens": None, "model": "gpt-5-mini-2025-08-07", "output": [],
        "parallel_tool_calls": True, "previous_response_id": None, "reasoning": {"effort": "low", "summary": None}, "store": True,
        "temperature": 1.0, "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto", "tools": [TOOL],
        "top_p": 1.0, "truncation": "disabled", "usage": None, "user": None, "metadata": {}}
rsn = {"id": "rs_68c1f0a3", "type": "reasoning", "summary": []}
msg_done = {"id": "msg_68c1f0a4", "type": "message", "status": "completed", "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Checking the weather."}], "role": "assistant"}
fc_done = {"id": "fc_68c1f0a5", "type": "function_call", "status": "completed", "arguments": "{\"city\":\"Paris\"}", "call_id": "call_Q1w2E3r4T5y6", "name": "get_weather"}
usage = {"input_tokens": 1320, "input_tokens_details": {"cached_tokens": 1024}, "output_tokens": 180, "output_tokens_details": {"reasoning_tokens": 128}, "total_tokens": 1500}
ev = [("response.created", {"response": base}), ("response.in_progress", {"response": base}),
      ("response.output_item.added", {"output_index": 0, "item": rsn}), ("response.output_item.done", {"output_index": 0, "item": rsn}),
      ("response.output_item.added", {"output_index": 1, "item": {"id": "msg_68c1f0a4", "type": "message", "status": "in_progress", "content": [], "role": "assistant"}}),
      ("response.content_part.added", {"item_id": "msg_68c1f0a4", "output_index": 1, "content_index": 0, "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}})]
for d in ["Checking", " the", " weather."]:
    ev.append(("response.output_text.delta", {"item_id": "msg_68c1f0a4", "output_index": 1, "content_index": 0, "delta": d, "logprobs": [], "obfuscation": "aB3"}))
ev += [("response.output_text.done", {"item_id": "msg_68c1f0a4", "output_index": 1, "content_index": 0, "text": "Checking the weather.", "logprobs": []}),
       ("response.content_part.done", {"item_id": "msg_68c1f0a4", "output_index": 1, "content_index": 0, "part": msg_done["content"][0]}),
       ("response.output_item.done", {"output_index": 1, "item": msg_done}),
       ("response.output_item.added", {"output_index": 2, "item": dict(fc_done, status="in_progress", arguments="")})]
for d in ["{\"city\":", "\"Paris\"}"]:
    ev.append(("response.function_call_arguments.delta", {"item_id": "fc_68c1f0a5", "output_index": 2, "delta": d, "obfuscation": "k9"}))
ev += [("response.function_call_arguments.done", {"item_id": "fc_68c1f0a5", "output_index": 2, "arguments": "{\"city\":\"Paris\"}"}),
       ("response.output_item.done", {"output_index": 2, "item": fc_done}),
       ("response.completed", {"response": dict(base, status="completed", output=[rsn, msg_done, fc_done], usage=usage)})]
oa_req = {"model": "gpt-5-mini", "input": "Weather in Paris?", "tools": [TOOL], "reasoning": {"effort": "low"}, "stream": True}
write('responses-openai', 'reasoning-tool-call', rs(ev), {"client": "openai", "op": "responses", "provider": "openai", "request": oa_req,
      "usage": {"inputTokens": 1320, "outputTokens": 180, "cachedInputTokens": 1024, "reasoningTokens": 128}, "finishReason": "tool_calls",
      "expectedIsUpstream": True})
# Cut after the text: the client gets the whole events that arrived, then an error event (never a silent success).
write('responses-openai', 'cut-short', rs(ev[:9]), {"client": "openai", "op": "responses", "provider": "openai", "request": oa_req,
      "usage": None, "finishReason": None})
write('responses-azure', 'text', rs(ev[:6] + [ev[6]] + [ev[9], ev[10], ev[11], ("response.completed", {"response": dict(base, status="completed", output=[msg_done], usage=usage)})]).replace('"delta":"Checking"', '"delta":"Checking the weather."'),
      {"client": "openai", "op": "responses", "provider": "azure", "request": dict(oa_req, tools=[]),
      "usage": {"inputTokens": 1320, "outputTokens": 180, "cachedInputTokens": 1024, "reasoningTokens": 128}, "finishReason": "stop", "expectedIsUpstream": True})

# ------------------------------------------------------------------ Claude on Bedrock: InvokeModelWithResponseStream
# Each `chunk` frame's payload is {"bytes": base64(<one Anthropic stream event's JSON>)}; message_stop carries
# Bedrock's amazon-bedrock-invocationMetrics. The client gets Anthropic SSE with each event's JSON byte for byte.
def binv(ev):
    return es_frame({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
                    j({"bytes": base64.b64encode(j(ev).encode()).decode(), "p": PAD[:13]}).encode())

def bedrock_invoke(throttle=False):
    evs = [{"type": "message_start", "message": {"id": "msg_bdrk_01Xw5pL8tK2qJbTQmWc9nRzA", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-20250514", "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 12, "cache_creation_input_tokens": 3000, "cache_read_input_tokens": 20000,
                      "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}, "output_tokens": 4}}},
           {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}]
    for t in ["The user wants", " the weather — ", "call the tool."]:
        evs.append({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": t}})
    if throttle:
        b = b''.join(binv(e) for e in evs)
        return b + es_frame({":exception-type": "throttlingException", ":content-type": "application/json", ":message-type": "exception"},
                            j({"message": "Too many tokens, please wait before trying again."}).encode())
    evs.append({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}})
    evs.append({"type": "content_block_stop", "index": 0})
    evs.append({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}})
    evs.append({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Checking Paris — ☀️?"}})
    evs.append({"type": "content_block_stop", "index": 1})
    evs.append({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_bdrk_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {}}})
    for p in ["", "{\"city\":", " \"Paris\"}"]:
        evs.append({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": p}})
    evs.append({"type": "content_block_stop", "index": 2})
    evs.append({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 87}})
    evs.append({"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 12, "outputTokenCount": 87, "invocationLatency": 1873, "firstByteLatency": 602}})
    return b''.join(binv(e) for e in evs)

inv_req = {"model": "claude-bedrock", "max_tokens": 2048, "stream": True,
           "thinking": {"type": "enabled", "budget_tokens": 1024},
           "system": [{"type": "text", "text": "You are a weather bot.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
           "messages": [{"role": "user", "content": "Weather in Paris?"}],
           "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}
write('anthropic-bedrock-invoke', 'thinking-tool-use', bedrock_invoke(), {"client": "anthropic", "provider": "bedrock",
      "upstreamModel": "us.anthropic.claude-sonnet-4-20250514-v1:0", "request": inv_req,
      "usage": {"inputTokens": 23012, "outputTokens": 87, "cachedInputTokens": 20000, "cacheCreationInputTokens": 3000, "cacheCreation1hInputTokens": 2000},
      "finishReason": "tool_use"})
write('anthropic-bedrock-invoke', 'throttled', bedrock_invoke(True), {"client": "anthropic", "provider": "bedrock",
      "upstreamModel": "anthropic.claude-sonnet-4-20250514-v1:0", "request": inv_req,
      "usage": {"inputTokens": 23012, "outputTokens": 4, "cachedInputTokens": 20000, "cacheCreationInputTokens": 3000, "cacheCreation1hInputTokens": 2000},
      "finishReason": None})
print('ok')

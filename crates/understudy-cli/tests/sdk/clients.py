"""The official OpenAI and Anthropic Python SDKs as real clients of the gateway.

Usage: clients.py GATEWAY_URL. Routes expected: `smart` (healthy), `broken` (primary fails,
backup answers), `dead` (every candidate fails), `tools` (answers with a tool call).
Exits non-zero with a message on the first failed check.
"""
import json
import sys

import anthropic
import openai

url = sys.argv[1]
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


oa = openai.OpenAI(base_url=f"{url}/v1", api_key="caller-key", max_retries=2)
an = anthropic.Anthropic(base_url=url, api_key="caller-key", max_retries=2)

# --- OpenAI SDK -------------------------------------------------------------------------------
r = oa.chat.completions.create(model="smart", messages=[{"role": "user", "content": "Say hello."}])
check(r.choices[0].message.content, "openai: non-streaming answer has content")
check(r.model == "gpt-4o", f"openai: model is the answering deployment's ({r.model})")
check(r.usage.total_tokens > 0, "openai: usage")

raw = oa.chat.completions.with_raw_response.create(
    model="broken", messages=[{"role": "user", "content": "Say hello."}]
)
check(raw.headers.get("x-understudy-served-by") == "anthropic/claude-backup", "openai: failover served by the backup")
check("=auth" in raw.headers.get("x-understudy-fallback-reasons", ""), "openai: failover reason header")
r = raw.parse()
check(r.choices[0].message.content, "openai: failover answer has content")
check(r.model == "claude-backup", "openai: failover model is the backup's")

text, usage = "", None
stream = oa.chat.completions.create(
    model="broken",
    messages=[{"role": "user", "content": "Say hello."}],
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        text += chunk.choices[0].delta.content
    if chunk.usage:
        usage = chunk.usage
check(text, "openai: streamed failover text")
check(usage is not None and usage.completion_tokens > 0, "openai: stream usage chunk")

r = oa.chat.completions.create(
    model="tools",
    messages=[{"role": "user", "content": "Weather in Oslo?"}],
    tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
)
check(r.choices[0].finish_reason == "tool_calls", f"openai: tool call finish reason ({r.choices[0].finish_reason})")
check(r.choices[0].message.tool_calls[0].function.name == "get_weather", "openai: tool call name")
json.loads(r.choices[0].message.tool_calls[0].function.arguments)

try:
    oa.chat.completions.create(model="dead", messages=[{"role": "user", "content": "x"}])
    check(False, "openai: dead route raises")
except openai.APIStatusError as e:
    check(e.status_code == 503, f"openai: dead route status {e.status_code}")
    check(e.body.get("type") == "all_candidates_failed" or e.body.get("code") == "all_candidates_failed", f"openai: error type ({e.body})")

try:
    oa.chat.completions.create(model="no-such-route", messages=[{"role": "user", "content": "x"}])
    check(False, "openai: unknown route raises")
except openai.NotFoundError:
    check(True, "openai: unknown route is NotFoundError")

# Embeddings: the SDK asks for base64 by default and decodes it; a Gemini provider serves them.
e = oa.embeddings.create(model="embed", input=["hello world", "bye"])
check(len(e.data) == 2 and len(e.data[0].embedding) == 8, f"openai: embeddings shape ({e})")
check(abs(sum(x * x for x in e.data[0].embedding) - 1) < 1e-3, "openai: embeddings decoded from base64")
check(e.model == "gemini-embedding-001", f"openai: embeddings model is the deployment's ({e.model})")
f = oa.embeddings.create(model="embed", input="hello world", encoding_format="float", dimensions=8)
check(all(abs(a - b) < 1e-6 for a, b in zip(f.data[0].embedding, e.data[0].embedding)), "openai: float == base64")
check(e.usage.prompt_tokens > 0, "openai: embeddings usage")

# --- Anthropic SDK ----------------------------------------------------------------------------
m = an.messages.create(model="smart", max_tokens=100, messages=[{"role": "user", "content": "Say hello."}])
check(m.content[0].type == "text" and m.content[0].text, "anthropic: non-streaming text")
check(m.model == "gpt-4o", f"anthropic: model is the answering deployment's ({m.model})")
check(m.usage.output_tokens > 0, "anthropic: usage")

m = an.messages.create(model="broken", max_tokens=100, system="Be brief.", messages=[{"role": "user", "content": "Say hello."}])
check(m.model == "claude-backup" and m.content[0].text, "anthropic: failover")

with an.messages.stream(model="broken", max_tokens=100, messages=[{"role": "user", "content": "Say hello."}]) as s:
    streamed = "".join(s.text_stream)
    final = s.get_final_message()
check(streamed and final.content[0].text == streamed, "anthropic: streamed failover text")
check(final.stop_reason == "end_turn", f"anthropic: stop reason ({final.stop_reason})")

with an.messages.stream(model="smart", max_tokens=100, messages=[{"role": "user", "content": "Say hello."}]) as s:
    streamed = "".join(s.text_stream)
check(streamed, "anthropic: stream translated from an OpenAI provider")

m = an.messages.create(
    model="tools",
    max_tokens=100,
    messages=[{"role": "user", "content": "Weather in Oslo?"}],
    tools=[{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
)
check(m.stop_reason == "tool_use" and m.content[-1].type == "tool_use", f"anthropic: tool use ({m.stop_reason})")

try:
    an.messages.create(model="dead", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    check(False, "anthropic: dead route raises")
except anthropic.APIStatusError as e:
    check(e.status_code == 503, f"anthropic: dead route status {e.status_code}")

print(f"ok: {checks} checks passed (openai {openai.__version__}, anthropic {anthropic.__version__})")

// The ~1.2 KB chat request (acme/research key, OpenAI client) and its JSON answer that the ext_proc
// bench sends and the providers bench's body-path line replays: one definition, so both measure the same bytes.
export function chatWorkload(): { body: Buffer; response: Buffer } {
  const messages = [
    { role: 'system', content: 'You are a helpful assistant for the research team. Answer precisely and cite sources when you can.' },
    { role: 'user', content: 'Summarise the following notes for the weekly report. '.repeat(8) },
    { role: 'assistant', content: 'Here is a short summary of the notes you sent: the experiments converged, the baseline held, two regressions were fixed. '.repeat(2) },
    { role: 'user', content: 'Now list three risks for next week, one line each, and keep it under fifty words in total. Thanks!'.repeat(3) },
  ];
  const body = Buffer.from(JSON.stringify({ model: 'gpt-4o-mini', messages, max_tokens: 256, temperature: 0.2 }));
  const response = Buffer.from(
    JSON.stringify({
      id: 'chatcmpl-bench',
      object: 'chat.completion',
      created: 1700000000,
      model: 'gpt-4o-mini-eu',
      choices: [{ index: 0, message: { role: 'assistant', content: '1. Data drift. 2. GPU quota. 3. Holiday staffing.' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 380, completion_tokens: 18, total_tokens: 398 },
    }),
  );
  return { body, response };
}

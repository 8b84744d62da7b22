// The router-stage exchange for one ext_proc stream: an LLM request (GatewayExchange) or MCP traffic
// (McpExchange), chosen on the request path once the headers arrive. Everything else is delegated.
import type { ErrorApi } from '../errors.ts';
import type { BodyOutput, EndReason, Exchange, PhaseResult, RequestDecision, RequestHeadersInput, ResponseHeadersDecision } from '../extproc/processor.ts';
import { isMcpPath } from './route.ts';

export class DispatchExchange implements Exchange {
  private chosen: Exchange | undefined;

  constructor(
    private readonly llm: () => Exchange,
    private readonly mcp: () => Exchange,
  ) {}

  private get ex(): Exchange {
    // Before the headers (a local reply passing through): the LLM exchange, as without MCP.
    this.chosen ??= this.llm();
    return this.chosen;
  }

  clientApi(): ErrorApi {
    return this.ex.clientApi();
  }

  requestHeaders(input: RequestHeadersInput): PhaseResult<RequestDecision> {
    this.chosen ??= isMcpPath(input.headers.get(':path') ?? '') ? this.mcp() : this.llm();
    return this.chosen.requestHeaders(input);
  }

  requestBody(body: Buffer): PhaseResult<RequestDecision> {
    return this.ex.requestBody(body);
  }

  responseHeaders(status: number, headers: Map<string, string>, endOfStream: boolean): PhaseResult<ResponseHeadersDecision> {
    return this.ex.responseHeaders(status, headers, endOfStream);
  }

  responseBody(body: Buffer): PhaseResult<BodyOutput> {
    return this.ex.responseBody(body);
  }

  responseChunk(chunk: Buffer, last: boolean): PhaseResult<BodyOutput> {
    return this.ex.responseChunk(chunk, last);
  }

  end(reason: EndReason, detail?: string): void {
    this.chosen?.end(reason, detail);
  }

  requestBodyTimeoutMs(size: number): number | undefined {
    return this.ex.requestBodyTimeoutMs?.(size);
  }

  errorContext(): { headers: Record<string, string>; metadata: Record<string, unknown> } {
    return this.ex.errorContext?.() ?? { headers: {}, metadata: {} };
  }
}

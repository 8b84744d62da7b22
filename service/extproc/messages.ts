// TypeScript views of the ext_proc messages as @grpc/proto-loader decodes/encodes them
// (keepCase, oneofs: the `request`/`response` virtual fields name the set oneof member).

export interface HeaderValue {
  key: string;
  value?: string;
  raw_value?: Buffer;
}

export interface HeaderMap {
  headers?: HeaderValue[];
}

export interface HttpHeaders {
  headers?: HeaderMap;
  end_of_stream?: boolean;
}

export interface HttpBody {
  body?: Buffer;
  end_of_stream?: boolean;
}

export interface HttpTrailers {
  trailers?: HeaderMap;
}

/** google.protobuf.Struct / Value as protobufjs encodes them: camelCase field names. */
export interface PbStruct {
  fields?: Record<string, PbValue>;
}
export type PbValue =
  | { nullValue: 'NULL_VALUE' | 0 }
  | { numberValue: number }
  | { stringValue: string }
  | { boolValue: boolean }
  | { structValue: PbStruct }
  | { listValue: { values?: PbValue[] } };

export interface Metadata {
  filter_metadata?: Record<string, PbStruct>;
}

export interface ProcessingRequest {
  request_headers?: HttpHeaders;
  response_headers?: HttpHeaders;
  request_body?: HttpBody;
  response_body?: HttpBody;
  request_trailers?: HttpTrailers;
  response_trailers?: HttpTrailers;
  metadata_context?: Metadata;
  attributes?: Record<string, PbStruct>;
  observability_mode?: boolean;
  /** oneofs: true — name of the member that is set. */
  request?: RequestKind;
}

export type RequestKind =
  | 'request_headers'
  | 'response_headers'
  | 'request_body'
  | 'response_body'
  | 'request_trailers'
  | 'response_trailers';

export interface HeaderValueOption {
  header: HeaderValue;
  /** Only the deprecated BoolValue `append` is honoured by Envoy; false overwrites. */
  append?: { value: boolean };
}

export interface HeaderMutation {
  set_headers?: HeaderValueOption[];
  remove_headers?: string[];
}

export interface BodyMutation {
  body?: Buffer;
  clear_body?: boolean;
}

export interface CommonResponse {
  status?: 'CONTINUE' | 'CONTINUE_AND_REPLACE';
  header_mutation?: HeaderMutation;
  body_mutation?: BodyMutation;
  clear_route_cache?: boolean;
}

export type BodySendMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL';
export type HeaderSendMode = 'DEFAULT' | 'SEND' | 'SKIP';

export interface ProcessingMode {
  request_header_mode?: HeaderSendMode;
  response_header_mode?: HeaderSendMode;
  request_body_mode?: BodySendMode;
  response_body_mode?: BodySendMode;
  request_trailer_mode?: HeaderSendMode;
  response_trailer_mode?: HeaderSendMode;
}

export interface ImmediateResponse {
  status: { code: number };
  headers?: HeaderMutation;
  body?: Buffer;
  details?: string;
}

export interface ProcessingResponse {
  request_headers?: { response?: CommonResponse };
  response_headers?: { response?: CommonResponse };
  request_body?: { response?: CommonResponse };
  response_body?: { response?: CommonResponse };
  request_trailers?: { header_mutation?: HeaderMutation };
  response_trailers?: { header_mutation?: HeaderMutation };
  immediate_response?: ImmediateResponse;
  dynamic_metadata?: PbStruct;
  mode_override?: ProcessingMode;
  /** Asks Envoy for more time on the current message (needs max_message_timeout); the real reply must follow. */
  override_message_timeout?: { seconds?: number | string; nanos?: number };
  /** oneofs: true on decode. */
  response?: string;
}

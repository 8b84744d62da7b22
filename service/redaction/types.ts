// What a policy asks redaction to do for one request. Policies (service/policy) produce these;
// service/redaction carries them out. Shape shared by both.

export type RedactionAction = 'mask' | 'hash' | 'block' | 'pseudonymize';

export interface RedactionRule {
  /** `<policy>/<rule>` that selected it. */
  source: string;
  /** Built-in detector names (e.g. `email`, `credit_card`), custom detector names, or `*` for every built-in. */
  detectors: string[];
  action: RedactionAction;
  /** Also redact model output on the response path. */
  responses: boolean;
}

/** A detector defined in policy: an RE2-semantics regex or a keyword list. */
export interface CustomDetectorSpec {
  name: string;
  regex?: string;
  keywords?: string[];
  caseInsensitive?: boolean;
}

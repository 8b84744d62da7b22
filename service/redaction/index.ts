// Public surface of service/redaction. See DETECTORS.md for detector semantics and the walked/skipped fields.

export type { CustomDetectorSpec, RedactionAction, RedactionRule } from './types.ts';
export {
  compileRedactor,
  redactionConfigProblems,
  redactorKey,
  Redactor,
  RedactorCache,
  REDACTION_LIMITS,
  toRedactionCounts,
  type RedactionCountRow,
  type RedactorOptions,
  type OutputTransform,
  type OutputTextOptions,
  type RedactionResult,
  type RequestContext,
} from './redactor.ts';
export { Restorer, type TextStream } from './restore.ts';
export {
  RedactionBlockedError,
  MAX_REPORTED_FINDINGS,
  emptyReport,
  type RedactionFinding,
  type RedactionReport,
} from './report.ts';
export { BUILTIN_DETECTORS, DETECTOR_GROUPS, type Detector, type Span } from './detectors.ts';
export { CUSTOM_LIMITS, customDetectorProblems } from './custom.ts';
export { Scanner, type Finding } from './scan.ts';

import { BUILTIN_DETECTORS, DETECTOR_GROUPS } from './detectors.ts';

/** Every name a RedactionRule may use without a custom detector: built-ins and groups (`*`, pii, secrets, …). */
export const BUILTIN_DETECTOR_NAMES: readonly string[] = [
  ...BUILTIN_DETECTORS.map((d) => d.name),
  ...Object.keys(DETECTOR_GROUPS),
];

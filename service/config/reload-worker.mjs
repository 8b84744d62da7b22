// Entry of the config reload worker (config/reload.ts): registers the TypeScript loader in this
// thread (hooks registered on the main thread do not reach workers) and runs the worker module.
import { register } from 'tsx/esm/api';

register();
await import('./reload-worker.ts');

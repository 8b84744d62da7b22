// Public surface of the security module: run mode, ext_proc peer authentication, admin credential.
export { modeFromEnv, SecurityConfigError } from './mode.ts';
export type { RunMode } from './mode.ts';
export { AUTH_METADATA_KEY, buildGrpcAuth } from './grpc-auth.ts';
export type { AuthFailure, GrpcAuth, GrpcAuthOptions, GrpcTlsOptions } from './grpc-auth.ts';
export { adminGuard } from './admin-auth.ts';
export type { AdminGuard, AdminVerdict } from './admin-auth.ts';
export { checkPosture } from './posture.ts';
export { throttledDenials } from './denials.ts';
export type { Posture, PostureInput } from './posture.ts';
export { securityFromEnv } from './env.ts';
export type { SecuritySettings } from './env.ts';
export { isLoopbackAddr } from './addresses.ts';
export { parseSubjectAltNames, PeerAllowList } from './peer-identity.ts';

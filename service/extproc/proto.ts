// Loads Envoy's ext_proc service definition from the protos shipped in @grpc/grpc-js-xds (never copied here).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const require = createRequire(import.meta.url);

export function xdsDepsDir(): string {
  return join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
}

export function protoIncludeDirs(): string[] {
  const deps = xdsDepsDir();
  return [
    join(deps, 'envoy-api'),
    join(deps, 'xds'),
    join(deps, 'googleapis'),
    join(deps, 'protoc-gen-validate'),
  ];
}

// keepCase keeps Envoy's snake_case field names; protobufjs's bundled well-known types
// (Struct, Duration) stay camelCase regardless (see the protocol notes §10).
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: protoIncludeDirs(),
};

let cached: grpc.ServiceDefinition | undefined;

export function extProcService(): grpc.ServiceDefinition {
  if (cached) return cached;
  const def = protoLoader.loadSync('envoy/service/ext_proc/v3/external_processor.proto', LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    envoy: { service: { ext_proc: { v3: { ExternalProcessor: grpc.ServiceClientConstructor } } } };
  };
  cached = pkg.envoy.service.ext_proc.v3.ExternalProcessor.service;
  return cached;
}

/** A client constructor for the same service (the bench and tests use it). */
export function extProcClientCtor(): grpc.ServiceClientConstructor {
  extProcService();
  const def = protoLoader.loadSync('envoy/service/ext_proc/v3/external_processor.proto', LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    envoy: { service: { ext_proc: { v3: { ExternalProcessor: grpc.ServiceClientConstructor } } } };
  };
  return pkg.envoy.service.ext_proc.v3.ExternalProcessor;
}

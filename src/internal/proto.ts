/**
 * Loads a .proto from its text (imported with `import text from '…proto' with { type: 'text' }`, which works in
 * Bun, in the compiled binary, Node and Deno) into a grpc-js package definition. Text loading does not follow
 * `import` lines: each proto of the project is self-contained.
 */
import { fromJSON, type Options } from '@grpc/proto-loader';
import { loadPackageDefinition, type GrpcObject } from '@grpc/grpc-js';
import protobuf from 'protobufjs';

export const PROTO_OPTIONS: Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

export function loadProtoText(text: string, options: Options = PROTO_OPTIONS): GrpcObject {
  const parsed = protobuf.parse(text, { keepCase: true });
  return loadPackageDefinition(fromJSON(parsed.root.toJSON(), options));
}

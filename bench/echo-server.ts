// A plain grpc-js server that echoes its request bytes: the transport limit the model server is compared
// against (same framework, same payload, no decoding, no model). Echo answers a unary call; EchoStream
// answers each message of a bidirectional stream. Prints its port on stdout.
import { Server, ServerCredentials, type ServerDuplexStream, type ServiceDefinition } from "@grpc/grpc-js";

const identity = (b: Buffer): Buffer => b;
const method = (name: string, stream: boolean) => ({
  path: `/bench.Echo/${name}`,
  requestStream: stream,
  responseStream: stream,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});
const service: ServiceDefinition = { echo: method("Echo", false), echoStream: method("EchoStream", true) };
const server = new Server({ "grpc.max_receive_message_length": 64 << 20 });
server.addService(service, {
  echo: (call: { request: Buffer }, callback: (e: null, r: Buffer) => void) => callback(null, call.request),
  echoStream: (call: ServerDuplexStream<Buffer, Buffer>) => {
    call.on("data", (message: Buffer) => call.write(message));
    call.on("end", () => call.end());
  },
} as never);
server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log(JSON.stringify({ port }));
});
process.on("SIGTERM", () => server.forceShutdown());

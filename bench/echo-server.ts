// A plain grpc-js server that echoes its request bytes: the transport limit the model server is compared
// against (same framework, same payload, no decoding, no model). Prints its port on stdout.
import { Server, ServerCredentials, type ServiceDefinition } from "@grpc/grpc-js";

const identity = (b: Buffer): Buffer => b;
const service: ServiceDefinition = {
  echo: {
    path: "/bench.Echo/Echo",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};
const server = new Server({ "grpc.max_receive_message_length": 64 << 20 });
server.addService(service, { echo: (call: { request: Buffer }, callback: (e: null, r: Buffer) => void) => callback(null, call.request) } as never);
server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log(JSON.stringify({ port }));
});
process.on("SIGTERM", () => server.forceShutdown());

// gRPC's message framing, for code that speaks the wire itself: the SDK's own HTTP/2 transport and the
// server's lean one cut messages out of a stream's bytes with the same reader.
export { MessageFrames } from "./wire/message-frames.js";

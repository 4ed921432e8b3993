// The generated wire contract (ts-proto over proto/aiaas/v1), for code that speaks it directly: the server,
// and apps that want the raw grpc-js clients.
export * from "./gen/aiaas/v1/tensor.js";
export * from "./gen/aiaas/v1/inference.js";
export * from "./gen/aiaas/v1/models.js";
export * from "./gen/aiaas/v1/training.js";
export * from "./gen/aiaas/v1/admin.js";

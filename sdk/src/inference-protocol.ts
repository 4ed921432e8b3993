// The Open Inference Protocol (KServe v2 / Triton gRPC), generated from proto/inference: for servers that
// speak it and for apps with existing Triton-style clients.
export * from "./gen/inference/grpc_service.js";
export {
  DataType as ModelConfigDataType,
  ModelConfig,
  ModelDynamicBatching,
  ModelInput,
  ModelInstanceGroup,
  ModelInstanceGroup_Kind,
  ModelOutput,
  ModelVersionPolicy,
} from "./gen/inference/model_config.js";

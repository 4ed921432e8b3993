import { fileURLToPath } from "node:url";

/** The contracts' .proto files, for server reflection: the repository's proto/ beside server/. */
export const PROTO_ROOT = fileURLToPath(new URL("../../../proto/", import.meta.url));

export const SERVED_PROTOS = ["aiaas/v1/inference.proto", "aiaas/v1/models.proto", "inference/grpc_service.proto"] as const;

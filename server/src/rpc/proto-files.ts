import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

// The contracts' .proto files, for server reflection: inside the published package (server/proto, copied at
// pack time), else the repository's proto/ beside server/.
const packaged = fileURLToPath(new URL("../../proto/", import.meta.url));
export const PROTO_ROOT = existsSync(packaged) ? packaged : fileURLToPath(new URL("../../../proto/", import.meta.url));

export const SERVED_PROTOS = ["aiaas/v1/inference.proto", "aiaas/v1/models.proto", "aiaas/v1/training.proto", "aiaas/v1/admin.proto", "inference/grpc_service.proto"] as const;

import { AdminService, InferenceService, ModelsService, TrainingService } from "@aiaas/sdk/gen";
import { GRPCInferenceServiceService } from "@aiaas/sdk/gen/inference";
import type { Role } from "../auth/index.js";

/** A role for every method of a generated service definition: a new RPC without one does not compile. */
type RolesOf<D> = { readonly [K in keyof D]: Role };

function declare<D extends Record<string, { readonly path: string }>>(definition: D, roles: RolesOf<D>): [string, Role][] {
  return Object.entries(definition).map(([key, method]) => [method.path.slice(method.path.lastIndexOf("/") + 1), roles[key as keyof D]]);
}

/** The role each RPC needs, by method name (health and reflection need none and are not wrapped). */
const METHOD_ROLES: ReadonlyMap<string, Role> = new Map([
  ...declare(InferenceService, { predict: "predict", predictStream: "predict" }),
  ...declare(ModelsService, { listModels: "predict", getModel: "predict", loadModel: "train", unloadModel: "train" }),
  ...declare(TrainingService, { train: "train", getJob: "train", listJobs: "train", cancelJob: "train", watchJob: "train" }),
  ...declare(AdminService, { createKey: "admin", listKeys: "admin", revokeKey: "admin" }),
  ...declare(GRPCInferenceServiceService, {
    serverLive: "predict",
    serverReady: "predict",
    modelReady: "predict",
    serverMetadata: "predict",
    modelMetadata: "predict",
    modelInfer: "predict",
    modelStreamInfer: "predict",
    modelConfig: "predict",
    modelStatistics: "predict",
    repositoryIndex: "predict",
    repositoryModelLoad: "train",
    repositoryModelUnload: "train",
  }),
]);

/** The role a method needs; a handler wrapped for a method no service declares is a programming error. */
export function roleOf(method: string): Role {
  const role = METHOD_ROLES.get(method);
  if (!role) throw new Error(`no role is declared for RPC ${method}: add it to rpc/method-roles.ts`);
  return role;
}

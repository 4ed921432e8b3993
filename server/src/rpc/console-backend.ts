import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import {
  CancelJobRequest,
  CancelJobResponse,
  CreateKeyRequest,
  CreateKeyResponse,
  GetJobRequest,
  GetJobResponse,
  GetModelRequest,
  GetModelResponse,
  ListJobsRequest,
  ListJobsResponse,
  ListKeysRequest,
  ListKeysResponse,
  ListModelsRequest,
  ListModelsResponse,
  LoadModelRequest,
  LoadModelResponse,
  RevokeKeyRequest,
  RevokeKeyResponse,
  WatchTrafficResponse,
  TrainEvent,
  UnloadModelRequest,
  UnloadModelResponse,
  WatchJobRequest,
  WatchTrafficRequest,
} from "@aiaas/sdk/gen";
import type { Authenticator } from "../auth/index.js";
import { callInProcess, type InProcessCall, type InProcessMethod } from "./in-process-call.js";

const method = (service: string, name: string, request: InProcessMethod["request"], response: InProcessMethod["response"], responseStream = false): InProcessMethod => ({
  service: `aiaas.v1.${service}`,
  method: name,
  responseStream,
  request,
  response,
});

/** What the console calls: reading and controlling models, jobs and keys; never Predict or Train (payloads). */
const CONSOLE_METHODS: readonly InProcessMethod[] = [
  method("Models", "ListModels", ListModelsRequest, ListModelsResponse),
  method("Models", "GetModel", GetModelRequest, GetModelResponse),
  method("Models", "LoadModel", LoadModelRequest, LoadModelResponse),
  method("Models", "UnloadModel", UnloadModelRequest, UnloadModelResponse),
  method("Models", "WatchTraffic", WatchTrafficRequest, WatchTrafficResponse, true),
  method("Training", "ListJobs", ListJobsRequest, ListJobsResponse),
  method("Training", "GetJob", GetJobRequest, GetJobResponse),
  method("Training", "CancelJob", CancelJobRequest, CancelJobResponse),
  method("Training", "WatchJob", WatchJobRequest, TrainEvent, true),
  method("Admin", "CreateKey", CreateKeyRequest, CreateKeyResponse),
  method("Admin", "ListKeys", ListKeysRequest, ListKeysResponse),
  method("Admin", "RevokeKey", RevokeKeyRequest, RevokeKeyResponse),
];

/**
 * The console's backend (http/console-api.ts `ConsoleBackend`): its methods are the server's own gRPC
 * handlers called in-process, `services` by full service name, and who a key is comes from the one authenticator.
 */
export function createConsoleBackend(services: ReadonlyMap<string, UntypedServiceImplementation>, auth: Authenticator) {
  const byName = new Map(CONSOLE_METHODS.map((m) => [`${m.service}/${m.method}`, m]));
  return {
    methods: byName as ReadonlyMap<string, { readonly responseStream: boolean }>,
    call: (name: string, json: unknown, call: InProcessCall) => callInProcess(services, byName.get(name)!, json, call),
    session: (authorization: string | undefined, peer: string) => {
      const caller = auth.authenticate(authorization === undefined ? [] : [authorization], "ConsoleSession", peer);
      return { authentication: auth.enabled, keyId: caller.keyId, tenant: caller.tenant, roles: [...caller.roles] };
    },
  };
}

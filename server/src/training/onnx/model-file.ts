import { writeFile, readFile } from "node:fs/promises";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema, type ModelProto } from "onnx-buf";

export function encodeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  return fromBinary(ModelProtoSchema, bytes);
}

export async function readModelFile(path: string): Promise<ModelProto> {
  return decodeModel(await readFile(path));
}

export async function writeModelFile(path: string, model: ModelProto): Promise<void> {
  await writeFile(path, encodeModel(model));
}

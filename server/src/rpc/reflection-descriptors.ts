import type { PackageDefinition } from "@grpc/proto-loader";
import descriptor from "protobufjs/ext/descriptor/index.js";

interface FieldDescriptor {
  name: string;
  typeName?: string;
  oneofIndex?: number;
  proto3Optional?: boolean;
}

interface MessageDescriptor {
  name: string;
  field?: FieldDescriptor[];
  nestedType?: MessageDescriptor[];
  oneofDecl?: Array<{ name: string }>;
  options?: { mapEntry?: boolean };
}

/**
 * proto-loader writes a proto3 `optional` field as a member of a oneof named `_<field>` but without protoc's
 * proto3_optional flag, and Go's reflection clients then reject the file (a oneof of one field in proto3).
 * Flag them, and put those synthetic oneofs after the real ones, as protoc does. Returns whether it changed.
 */
function flagProto3Optional(message: MessageDescriptor): boolean {
  const oneofs = message.oneofDecl ?? [];
  const fields = message.field ?? [];
  // Decoded messages answer 0 for an unset oneof_index (a prototype default): only an own property counts.
  const inOneof = (f: FieldDescriptor): boolean => Object.prototype.hasOwnProperty.call(f, "oneofIndex");
  const synthetic = (index: number): boolean => {
    const members = fields.filter((f) => inOneof(f) && f.oneofIndex === index);
    return members.length === 1 && oneofs[index]!.name === `_${members[0]!.name}`;
  };
  const order = [...oneofs.keys()].sort((a, b) => Number(synthetic(a)) - Number(synthetic(b)) || a - b);
  let changed = order.some((from, to) => from !== to);
  for (const f of fields) {
    if (!inOneof(f)) continue;
    if (synthetic(f.oneofIndex!) && !f.proto3Optional) {
      f.proto3Optional = true;
      changed = true;
    }
  }
  if (!changed) return false;
  for (const f of fields) if (inOneof(f)) f.oneofIndex = order.indexOf(f.oneofIndex!);
  message.oneofDecl = order.map((i) => oneofs[i]!);
  return true;
}

/**
 * Descriptors as protoc writes them, for reflection clients written in Go (grpcurl, buf curl), which reject
 * a file that differs and then cannot find its services. proto-loader names a map field's entry type after
 * the field ("Statuses", "Input_dims") where protoc names it "StatusesEntry", "InputDimsEntry"
 * (grpc.health.v1.Health's List has a map): renamed as protoc does; proto3 `optional` fields get their flag (see flagProto3Optional).
 */
export function withProtocMapEntryNames(definitions: PackageDefinition): PackageDefinition {
  const fixed = new Map<Buffer, Buffer>();
  const fix = (bin: Buffer): Buffer => {
    let out = fixed.get(bin);
    if (!out) {
      const file = descriptor.FileDescriptorProto.decode(bin) as unknown as { messageType?: MessageDescriptor[] };
      let changed = false;
      const visit = (message: MessageDescriptor): void => {
        if (flagProto3Optional(message)) changed = true;
        for (const nested of message.nestedType ?? []) {
          const field = nested.options?.mapEntry ? message.field?.find((f) => f.typeName === nested.name || f.typeName?.endsWith(`.${nested.name}`)) : undefined;
          // protoc: the field name in CamelCase + "Entry" (input_dims -> InputDimsEntry).
          const name = field ? `${field.name.replace(/(?:^|_)([a-z0-9])/g, (_m, c: string) => c.toUpperCase())}Entry` : nested.name;
          if (field && nested.name !== name) {
            field.typeName = field.typeName!.slice(0, -nested.name.length) + name;
            nested.name = name;
            changed = true;
          }
          visit(nested);
        }
      };
      file.messageType?.forEach(visit);
      out = changed ? Buffer.from(descriptor.FileDescriptorProto.encode(file as never).finish()) : bin;
      fixed.set(bin, out);
    }
    return out;
  };
  for (const definition of Object.values(definitions)) {
    const d = definition as { fileDescriptorProtos?: Buffer[] };
    if (Array.isArray(d.fileDescriptorProtos)) d.fileDescriptorProtos = d.fileDescriptorProtos.map(fix);
  }
  return definitions;
}

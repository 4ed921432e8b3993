import type { PackageDefinition } from "@grpc/proto-loader";
import descriptor from "protobufjs/ext/descriptor/index.js";

interface MessageDescriptor {
  name: string;
  field?: Array<{ name: string; typeName?: string }>;
  nestedType?: MessageDescriptor[];
  options?: { mapEntry?: boolean };
}

/**
 * proto-loader names a map field's entry type after the field ("Statuses") where protoc names it
 * "StatusesEntry"; reflection clients written in Go (grpcurl, buf curl) reject such a file and then cannot
 * find its services (grpc.health.v1.Health's List has a map). Rename the entries as protoc does.
 */
export function withProtocMapEntryNames(definitions: PackageDefinition): PackageDefinition {
  const fixed = new Map<Buffer, Buffer>();
  const fix = (bin: Buffer): Buffer => {
    let out = fixed.get(bin);
    if (!out) {
      const file = descriptor.FileDescriptorProto.decode(bin) as unknown as { messageType?: MessageDescriptor[] };
      let changed = false;
      const visit = (message: MessageDescriptor): void => {
        for (const nested of message.nestedType ?? []) {
          if (nested.options?.mapEntry && !nested.name.endsWith("Entry")) {
            const field = message.field?.find((f) => f.typeName === nested.name || f.typeName?.endsWith(`.${nested.name}`));
            const name = `${nested.name}Entry`;
            if (field) field.typeName = field.typeName!.slice(0, -nested.name.length) + name;
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

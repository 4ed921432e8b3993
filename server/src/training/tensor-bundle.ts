// A tiny container for named tensors shared with the Python cross-checks: "AIAB", u32 header length, a JSON
// header (names, types, dims, byte offsets, free-form meta), then the raw little-endian data, 8-byte aligned.
import { readFileSync, writeFileSync } from "node:fs";

export interface BundleTensor {
  readonly type: "float32" | "int64";
  readonly dims: readonly number[];
  readonly data: Float32Array | BigInt64Array;
}

export interface Bundle {
  readonly meta: Record<string, unknown>;
  readonly tensors: Map<string, BundleTensor>;
}

export function writeBundle(path: string, bundle: Bundle): void {
  writeFileSync(path, encodeBundle(bundle), { mode: 0o600 }); // checkpoints hold a tenant's weights: private to the server's user
}

export function encodeBundle(bundle: Bundle): Buffer {
  const entries: { name: string; type: string; dims: readonly number[]; offset: number; bytes: number }[] = [];
  let offset = 0;
  for (const [name, t] of bundle.tensors) {
    entries.push({ name, type: t.type, dims: t.dims, offset, bytes: t.data.byteLength });
    offset += Math.ceil(t.data.byteLength / 8) * 8;
  }
  const header = Buffer.from(JSON.stringify({ meta: bundle.meta, tensors: entries }));
  const pad = (8 - ((8 + header.length) % 8)) % 8;
  const out = Buffer.alloc(8 + header.length + pad + offset);
  out.write("AIAB", 0, "latin1");
  out.writeUInt32LE(header.length + pad, 4);
  header.copy(out, 8);
  out.fill(0x20, 8 + header.length, 8 + header.length + pad); // JSON tolerates trailing spaces
  const base = 8 + header.length + pad;
  let i = 0;
  for (const t of bundle.tensors.values()) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, base + entries[i++]!.offset);
  }
  return out;
}

export function readBundle(path: string): Bundle {
  return decodeBundle(readFileSync(path), path);
}

export function decodeBundle(buf: Buffer, what = "data"): Bundle {
  if (buf.toString("latin1", 0, 4) !== "AIAB") throw new Error(`${what} is not a tensor bundle`);
  const headerLength = buf.readUInt32LE(4);
  const header = JSON.parse(buf.toString("utf8", 8, 8 + headerLength)) as {
    meta: Record<string, unknown>;
    tensors: { name: string; type: "float32" | "int64"; dims: number[]; offset: number; bytes: number }[];
  };
  const base = 8 + headerLength;
  const tensors = new Map<string, BundleTensor>();
  for (const e of header.tensors) {
    const bytes = new Uint8Array(buf.subarray(base + e.offset, base + e.offset + e.bytes)).buffer;
    tensors.set(e.name, { type: e.type, dims: e.dims, data: e.type === "int64" ? new BigInt64Array(bytes) : new Float32Array(bytes) });
  }
  return { meta: header.meta, tensors };
}

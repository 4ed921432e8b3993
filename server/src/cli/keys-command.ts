import { InvalidArgumentError, type Command } from "commander";
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { AdminClient, type ApiKey } from "@aiaas/sdk/gen";
import { AiaasError } from "@aiaas/sdk";
import { KeyStore, ROLES, type KeyInfo, type Role } from "../auth/index.js";

interface KeysOptions {
  readonly store?: string;
  readonly address?: string;
  readonly apiKey?: string;
  readonly tls?: boolean;
  readonly tlsCa?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
}

type TlsFrom = (opts: KeysOptions) => { ca?: string | Uint8Array; cert?: string | Uint8Array; key?: string | Uint8Array } | undefined;

const DURATION = /^(\d+)([smhd])$/;
const seconds = (value: string): number => {
  const m = DURATION.exec(value);
  if (!m) throw new InvalidArgumentError("expected a duration such as 3600s, 90m, 12h or 30d");
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "s" | "m" | "h" | "d"];
};

const fromWire = (k: ApiKey): KeyInfo => ({
  id: k.id,
  tenant: k.tenant,
  roles: k.roles as Role[],
  name: k.name,
  createdMs: Number(k.createdUnixMs),
  ...(k.expiresUnixMs ? { expiresMs: Number(k.expiresUnixMs) } : {}),
  ...(k.revokedUnixMs ? { revokedMs: Number(k.revokedUnixMs) } : {}),
});

function row(k: KeyInfo): string {
  const state = k.revokedMs ? "revoked" : k.expiresMs && k.expiresMs <= Date.now() ? "expired" : "active";
  const expires = k.expiresMs ? new Date(k.expiresMs).toISOString() : "never";
  return [k.id, k.tenant, k.roles.join(","), state, `expires ${expires}`, k.name].filter(Boolean).join("  ");
}

/** Admin RPCs against a running server, with the caller's admin key. */
function admin(opts: KeysOptions, tlsFrom: TlsFrom): { call<Req, Res>(method: "createKey" | "listKeys" | "revokeKey", request: Req): Promise<Res>; close(): void } {
  const tls = tlsFrom(opts);
  const buf = (v: string | Uint8Array | undefined): Buffer | null => (v === undefined ? null : Buffer.from(v));
  const creds = tls ? credentials.createSsl(buf(tls.ca), buf(tls.key), buf(tls.cert)) : credentials.createInsecure();
  const client = new AdminClient(opts.address!, creds);
  const md = new Metadata();
  if (opts.apiKey) md.set("authorization", `Bearer ${opts.apiKey}`);
  return {
    call: (method, request) =>
      new Promise((resolve, reject) =>
        (client[method] as unknown as (r: unknown, m: Metadata, cb: (e: ServiceError | null, r: unknown) => void) => void).call(client, request, md, (e, r) =>
          e ? reject(AiaasError.from(e)) : resolve(r as never),
        ),
      ),
    close: () => client.close(),
  };
}

function target(command: Command): Command {
  return command
    .option("--store <file>", "work on the key store file directly (how the first admin key is made)")
    .option("--address <host:port>", "work through a running server's Admin service instead", process.env.AIAAS_ADDRESS)
    .option("--api-key <key>", "an admin key, for --address", process.env.AIAAS_API_KEY)
    .option("--tls", "for --address: connect over TLS, trusting the system's CAs")
    .option("--tls-ca <file>", "for --address: connect over TLS, trusting this PEM CA")
    .option("--tls-cert <file>", "for --address: client certificate (PEM) for mutual TLS")
    .option("--tls-key <file>", "for --address: client key (PEM) for mutual TLS");
}

const which = (opts: KeysOptions): "store" | "rpc" => {
  if (opts.store) return "store";
  if (opts.address) return "rpc";
  throw new Error("give --store FILE (the server's --keys file) or --address host:port with an admin --api-key");
};

export function addKeysCommand(program: Command, guard: (work: () => Promise<void>) => Promise<void>, tlsFrom: TlsFrom): void {
  const keys = program.command("keys").description("API keys: create, list, revoke (on the store file or through a running server)");
  target(keys.command("create").description("create a key and print its token once"))
    .requiredOption("--tenant <name>", "the tenant the key belongs to")
    .option("--roles <list>", `comma-separated roles: ${ROLES.join(", ")}`, "predict")
    .option("--name <label>", "a label for people")
    .option("--expires-in <duration>", "e.g. 30d, 12h (default: never)", seconds)
    .action((opts: KeysOptions & { tenant: string; roles: string; name?: string; expiresIn?: number }) =>
      guard(async () => {
        const roles = opts.roles.split(",").map((r) => r.trim()).filter(Boolean) as Role[];
        if (which(opts) === "store") {
          const store = await KeyStore.open(opts.store!);
          const { token, key } = await store.create({ tenant: opts.tenant, roles, name: opts.name, expiresMs: opts.expiresIn ? Date.now() + opts.expiresIn * 1000 : undefined });
          console.log(row(key));
          console.log(`token (shown once): ${token}`);
          return;
        }
        const c = admin(opts, tlsFrom);
        try {
          const r = await c.call<object, { key: ApiKey; token: string }>("createKey", { tenant: opts.tenant, roles, name: opts.name ?? "", expiresInSeconds: BigInt(opts.expiresIn ?? 0) });
          console.log(row(fromWire(r.key)));
          console.log(`token (shown once): ${r.token}`);
        } finally {
          c.close();
        }
      }),
    );
  target(keys.command("list").description("list keys (never their secrets)"))
    .option("--tenant <name>", "only this tenant's keys")
    .action((opts: KeysOptions & { tenant?: string }) =>
      guard(async () => {
        let list: KeyInfo[];
        if (which(opts) === "store") list = (await KeyStore.open(opts.store!)).list(opts.tenant);
        else {
          const c = admin(opts, tlsFrom);
          try {
            list = (await c.call<object, { keys: ApiKey[] }>("listKeys", { tenant: opts.tenant ?? "" })).keys.map(fromWire);
          } finally {
            c.close();
          }
        }
        console.log(list.length ? list.map(row).join("\n") : "no keys");
      }),
    );
  target(keys.command("revoke <key-id>").description("revoke a key: it stops working at once, also on open streams")).action((id: string, opts: KeysOptions) =>
    guard(async () => {
      if (which(opts) === "store") {
        if (!(await (await KeyStore.open(opts.store!)).revoke(id))) throw new Error(`no key ${id} in ${opts.store}`);
      } else {
        const c = admin(opts, tlsFrom);
        try {
          await c.call("revokeKey", { id });
        } finally {
          c.close();
        }
      }
      console.log(`revoked ${id}`);
    }),
  );
}

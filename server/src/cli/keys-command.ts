import { InvalidArgumentError, Option, type Command } from "commander";
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { AdminClient, type ApiKey } from "@aiaas/sdk/gen";
import { AiaasError } from "@aiaas/sdk";
import { KeyStore, ROLES, type KeyInfo, type Role } from "../auth/index.js";
import { examples, table, toJson } from "./table.js";

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

const stateOf = (k: KeyInfo): string => (k.revokedMs ? "revoked" : k.expiresMs && k.expiresMs <= Date.now() ? "expired" : "active");

/** Keys as a table with a header row, or the explicit "no keys". */
function keyRows(keys: readonly KeyInfo[]): string {
  if (keys.length === 0) return "no keys";
  const iso = (ms: number | undefined): string => (ms ? new Date(ms).toISOString().replace(/\.\d+Z$/, "Z") : "never");
  return table(["ID", "TENANT", "ROLES", "STATE", "EXPIRES", "NAME"], keys.map((k) => [k.id, k.tenant, k.roles.join(","), stateOf(k), iso(k.expiresMs), k.name ?? ""]));
}

/** A made key as the chosen output: a table and the token once, JSON ({key, token}), or the token alone. */
function printCreated(key: KeyInfo, token: string, opts: { json?: boolean; quiet?: boolean }): void {
  if (opts.quiet) console.log(token);
  else if (opts.json) console.log(toJson({ key: { ...key, state: stateOf(key) }, token }, 2));
  else console.log(`${keyRows([key])}\ntoken (shown once): ${token}`);
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
    .addOption(new Option("--address <host:port>", "work through a running server's Admin service instead").env("AIAAS_ADDRESS"))
    .addOption(new Option("--api-key <key>", "an admin key, for --address").env("AIAAS_API_KEY"))
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
  const keys = program
    .command("keys")
    .description("API keys: create, list, revoke (on the store file or through a running server)")
    .addHelpText("after", examples("aiaas keys create --store keys.json --tenant ops --roles admin", "aiaas keys list --address localhost:50051 --api-key $ADMIN --json"))
    // Bare `aiaas keys` prints its help on stdout and exits 0, as `kubectl config` does.
    .action(() => keys.help());
  target(keys.command("create").description("create a key and print its token once"))
    .requiredOption("--tenant <name>", "the tenant the key belongs to")
    .option("--roles <list>", `comma-separated roles: ${ROLES.join(", ")}`, "predict")
    .option("--name <label>", "a label for people")
    .option("--expires-in <duration>", "e.g. 30d, 12h (default: never)", seconds)
    .option("--json", "print the key and its token as JSON")
    .option("-q, --quiet", "print only the token (for scripts)")
    .addHelpText(
      "after",
      examples(
        "aiaas keys create --store keys.json --tenant ops --roles admin --name 'first admin'",
        "ADMIN=$(aiaas keys create --store keys.json --tenant ops --roles admin --quiet)",
        "aiaas keys create --address localhost:50051 --api-key $ADMIN --tenant acme --roles predict,train --expires-in 90d --json",
      ),
    )
    .action((opts: KeysOptions & { tenant: string; roles: string; name?: string; expiresIn?: number; json?: boolean; quiet?: boolean }) =>
      guard(async () => {
        const roles = opts.roles.split(",").map((r) => r.trim()).filter(Boolean) as Role[];
        if (which(opts) === "store") {
          const store = await KeyStore.open(opts.store!);
          const { token, key } = await store.create({ tenant: opts.tenant, roles, name: opts.name, expiresMs: opts.expiresIn ? Date.now() + opts.expiresIn * 1000 : undefined });
          printCreated(key, token, opts);
          return;
        }
        const c = admin(opts, tlsFrom);
        try {
          const r = await c.call<object, { key: ApiKey; token: string }>("createKey", { tenant: opts.tenant, roles, name: opts.name ?? "", expiresInSeconds: BigInt(opts.expiresIn ?? 0) });
          printCreated(fromWire(r.key), r.token, opts);
        } finally {
          c.close();
        }
      }),
    );
  target(keys.command("list").description("list keys (never their secrets)"))
    .option("--tenant <name>", "only this tenant's keys")
    .option("--json", "print JSON instead of a table")
    .addHelpText("after", examples("aiaas keys list --store keys.json", "aiaas keys list --address localhost:50051 --api-key $ADMIN --tenant acme --json"))
    .action((opts: KeysOptions & { tenant?: string; json?: boolean }) =>
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
        console.log(opts.json ? toJson(list.map((k) => ({ ...k, state: stateOf(k) })), 2) : keyRows(list));
      }),
    );
  target(keys.command("revoke <key-id>").description("revoke a key: it stops working at once, also on open streams"))
    .addHelpText("after", examples("aiaas keys revoke 3f9a0c1b2d4e5f60 --store keys.json"))
    .action((id: string, opts: KeysOptions) =>
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

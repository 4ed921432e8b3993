import { unavailable } from "../common/errors.js";
import type { Database, NotificationHandler, Queryable } from "./database.js";
import type { DatabaseReply, DatabaseRequest, IpcPeer } from "./database-ipc-protocol.js";

type Pending = { resolve(reply: Extract<DatabaseReply, { t: "db-reply" }>): void; reject(error: Error): void };
type Body = DatabaseRequest extends infer R ? (R extends unknown ? Omit<R, "t" | "id"> : never) : never;

/**
 * The database of a serving process of `--processes N` without `--database-url`: the primary's embedded
 * database, reached over the cluster IPC (`DatabaseHost` on the other end). It is shared (every process of the
 * pool uses it), so jobs are leased, keys and model control announced, exactly as between replicas.
 */
export function openIpcDatabase(peer: IpcPeer<DatabaseReply, DatabaseRequest>): Database {
  let nextId = 1;
  const pending = new Map<number, Pending>();
  const listeners = new Map<string, Set<NotificationHandler>>();
  peer.onMessage((message) => {
    if (message?.t === "db-notify") for (const h of listeners.get(message.channel) ?? []) h(message.payload);
    else if (message?.t === "db-reply") pending.get(message.id)?.resolve(message);
  });
  const call = (body: Body): Promise<Extract<DatabaseReply, { t: "db-reply" }>> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, {
        resolve: (reply) => {
          pending.delete(id);
          if (!reply.error) return resolve(reply);
          reject(Object.assign(new Error(reply.error.message), reply.error.code ? { code: reply.error.code } : {}));
        },
        reject,
      });
      try {
        peer.send({ t: "db", id, ...body } as DatabaseRequest);
      } catch {
        pending.delete(id);
        reject(unavailable("the primary process (which holds the embedded database) is gone"));
      }
    });
  const on = (tx?: number): Queryable => ({
    query: async <Row>(sql: string, params: readonly unknown[] = []) => ((await call({ op: "query", sql, params: [...params], ...(tx ? { tx } : {}) })).rows ?? []) as Row[],
  });
  return {
    ...on(),
    shared: true,
    description: "the embedded PostgreSQL (PGlite) of the primary process",
    async transaction(work) {
      const { tx } = await call({ op: "begin" });
      let result;
      try {
        result = await work(on(tx));
      } catch (error) {
        await call({ op: "end", tx: tx!, commit: false }).catch(() => undefined);
        throw error;
      }
      await call({ op: "end", tx: tx!, commit: true });
      return result;
    },
    async listen(channel, handler) {
      let set = listeners.get(channel);
      if (!set) {
        listeners.set(channel, (set = new Set()));
        await call({ op: "listen", channel });
      }
      set.add(handler);
      return async () => {
        set.delete(handler);
        if (set.size > 0 || listeners.get(channel) !== set) return;
        listeners.delete(channel);
        await call({ op: "unlisten", channel }).catch(() => undefined);
      };
    },
    async exclusive(key, work) {
      await call({ op: "lock", key });
      try {
        return await work();
      } finally {
        await call({ op: "unlock", key }).catch(() => undefined);
      }
    },
    close: async () => undefined,
  };
}

import type { Database, Queryable } from "./database.js";
import type { DatabaseReply, DatabaseRequest, IpcPeer } from "./database-ipc-protocol.js";

const ROLLBACK = Symbol("rollback");

interface OpenTransaction {
  readonly tx: Queryable;
  finish(commit: boolean): void;
  readonly settled: Promise<void>;
}

/**
 * The primary's side of the embedded database it serves to the processes of `--processes N`: their queries,
 * transactions (held open on the one PGlite connection until the process ends them, so others wait as they
 * would for a row lock), notifications and named locks. When a process exits its transactions roll back and
 * its locks and listens are released, as a PostgreSQL server does for a lost connection.
 */
export class DatabaseHost {
  private readonly locks = new Map<string, Promise<void>>();
  private nextTx = 1;

  constructor(private readonly db: Database) {}

  /** Serves one process; the returned function cleans up after it (call it when the process exits). */
  attach(peer: IpcPeer<DatabaseRequest, DatabaseReply>): () => void {
    const txs = new Map<number, OpenTransaction>();
    const held = new Map<string, (() => void)[]>();
    const listens = new Map<string, Promise<() => Promise<void>>>();
    // Set when the process exited: a transaction or lock it was still waiting for is given up as soon as it comes.
    let gone = false;
    const serve = async (m: DatabaseRequest): Promise<Omit<Extract<DatabaseReply, { t: "db-reply" }>, "t" | "id">> => {
      switch (m.op) {
        case "query":
          return { rows: await (m.tx ? this.open(txs, m.tx).tx : this.db).query(m.sql, m.params) };
        case "begin": {
          const id = this.nextTx++;
          const t = await this.begin();
          if (gone) t.finish(false);
          else txs.set(id, t);
          return { tx: id };
        }
        case "end": {
          const t = this.open(txs, m.tx);
          txs.delete(m.tx);
          t.finish(m.commit);
          await t.settled;
          return {};
        }
        case "listen":
          if (gone) return {};
          if (!listens.has(m.channel)) listens.set(m.channel, this.db.listen(m.channel, (payload) => !gone && peer.send({ t: "db-notify", channel: m.channel, payload })));
          await listens.get(m.channel);
          return {};
        case "unlisten":
          await (await listens.get(m.channel))?.();
          listens.delete(m.channel);
          return {};
        case "lock": {
          const release = await this.lock(m.key);
          if (gone) release();
          else held.set(m.key, [...(held.get(m.key) ?? []), release]);
          return {};
        }
        case "unlock":
          held.get(m.key)?.shift()?.();
          return {};
      }
    };
    peer.onMessage((message) => {
      if (message?.t !== "db") return;
      serve(message).then(
        (reply) => !gone && peer.send({ t: "db-reply", id: message.id, ...reply }),
        (error: Error & { code?: string }) => !gone && peer.send({ t: "db-reply", id: message.id, error: { message: error.message, ...(error.code ? { code: String(error.code) } : {}) } }),
      );
    });
    return () => {
      gone = true;
      for (const t of txs.values()) t.finish(false);
      txs.clear();
      for (const list of held.values()) for (const release of list) release();
      for (const unlisten of listens.values()) void unlisten.then((u) => u()).catch(() => undefined);
    };
  }

  private open(txs: Map<number, OpenTransaction>, id: number): OpenTransaction {
    const t = txs.get(id);
    if (!t) throw new Error(`no open transaction ${id}`);
    return t;
  }

  /** Opens a transaction that stays open until `finish` says commit or roll back. */
  private async begin(): Promise<OpenTransaction> {
    let finish!: (commit: boolean) => void;
    const decided = new Promise<boolean>((resolve) => (finish = resolve));
    let opened!: (tx: Queryable) => void;
    const ready = new Promise<Queryable>((resolve) => (opened = resolve));
    const settled = this.db
      .transaction(async (tx) => {
        opened(tx);
        if (!(await decided)) throw ROLLBACK;
      })
      .catch((error: unknown) => {
        if (error !== ROLLBACK) throw error;
      });
    // Handled here too: a commit that fails is reported to whoever awaits `settled` (the process's "end"), and
    // one that nobody awaits any more (its process exited) must not bring the primary down.
    settled.catch(() => undefined);
    let began = false;
    const failedToBegin = settled.then(() => {
      if (!began) throw new Error("the transaction could not begin");
      return new Promise<never>(() => undefined);
    });
    failedToBegin.catch(() => undefined);
    const tx = await Promise.race([ready, failedToBegin]);
    began = true;
    return { tx, finish, settled };
  }

  /** Waits for the named lock; resolves with its release. */
  private async lock(key: string): Promise<() => void> {
    const before = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => mine);
    this.locks.set(key, tail);
    await before;
    return () => {
      release();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    };
  }
}

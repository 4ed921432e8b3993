import pg from "pg";
import type { NotificationHandler } from "./database.js";

/**
 * One connection that LISTENs for the whole process (a pooled connection cannot: it is shared between queries).
 * A lost connection is reopened with backoff; every channel is listened to again and each handler called with
 * `undefined`, since notifications sent while it was away are gone and the state must be read again.
 */
export class PostgresListener {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly handlers = new Map<string, Set<NotificationHandler>>();
  private closed = false;
  private retryMs = 100;

  constructor(private readonly url: string) {}

  async listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>> {
    let set = this.handlers.get(channel);
    const first = !set;
    if (!set) this.handlers.set(channel, (set = new Set()));
    set.add(handler);
    const client = await this.connect();
    if (first) await client.query(`LISTEN ${quoteIdentifier(channel)}`);
    return async () => {
      set.delete(handler);
      if (set.size > 0 || this.handlers.get(channel) !== set) return;
      this.handlers.delete(channel);
      await this.client?.query(`UNLISTEN ${quoteIdentifier(channel)}`).catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => undefined);
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.url, keepAlive: true });
    client.on("notification", (n) => {
      for (const h of this.handlers.get(n.channel) ?? []) h(n.payload ?? "");
    });
    client.on("error", () => this.lost(client));
    client.on("end", () => this.lost(client));
    await client.connect();
    for (const channel of this.handlers.keys()) await client.query(`LISTEN ${quoteIdentifier(channel)}`);
    this.client = client;
    this.retryMs = 100;
    return client;
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    void client.end().catch(() => undefined);
    if (this.closed) return;
    const retry = (): void => {
      if (this.closed) return;
      this.connect().then(
        () => {
          for (const set of this.handlers.values()) for (const h of set) h(undefined);
        },
        () => {
          this.retryMs = Math.min(this.retryMs * 2, 5000);
          setTimeout(retry, this.retryMs).unref();
        },
      );
    };
    setTimeout(retry, this.retryMs).unref();
  }
}

/** Channel names are this program's constants; quoted anyway so none is read as SQL. */
const quoteIdentifier = (name: string): string => `"${name.replace(/"/g, '""')}"`;

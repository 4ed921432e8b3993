/**
 * The embedded database served by the primary of `--processes N` to its serving processes, over Node's cluster
 * IPC (advanced serialization, so bytes and bigints cross as they are). Each request has an id its reply names.
 */
export type DatabaseRequest =
  | { readonly t: "db"; readonly id: number; readonly op: "query"; readonly sql: string; readonly params: readonly unknown[]; readonly tx?: number }
  | { readonly t: "db"; readonly id: number; readonly op: "begin" }
  | { readonly t: "db"; readonly id: number; readonly op: "end"; readonly tx: number; readonly commit: boolean }
  | { readonly t: "db"; readonly id: number; readonly op: "listen" | "unlisten"; readonly channel: string }
  | { readonly t: "db"; readonly id: number; readonly op: "lock" | "unlock"; readonly key: string };

export type DatabaseReply =
  | { readonly t: "db-reply"; readonly id: number; readonly rows?: unknown[]; readonly tx?: number; readonly error?: { readonly message: string; readonly code?: string } }
  | { readonly t: "db-notify"; readonly channel: string; readonly payload: string | undefined };

/** One end of the IPC channel: a serving process's `process`, or the primary's handle of one worker. */
export interface IpcPeer<In, Out> {
  send(message: Out): void;
  onMessage(handler: (message: In) => void): void;
}

import type { ChannelOptions } from "@grpc/grpc-js";

/** How the client retries calls the server could not take (UNAVAILABLE). Every SDK call is safe to retry. */
export interface RetryOptions {
  /** Attempts in all, the first included; 1 disables retries. Default 4. */
  readonly maxAttempts?: number;
  /** Delay before the first retry; doubles each time, with jitter. Default 50 ms. */
  readonly initialBackoffMs?: number;
  /** Default 2,000 ms. */
  readonly maxBackoffMs?: number;
}

export interface TlsOptions {
  /** PEM root certificates to trust (default: the system's). */
  readonly ca?: string | Uint8Array;
  /** PEM client certificate and key, for mutual TLS. */
  readonly cert?: string | Uint8Array;
  readonly key?: string | Uint8Array;
}

/** Pings on a connection with calls open, so a peer gone without a word fails them early (and they retry). */
export interface KeepaliveOptions {
  /** A ping this often. Default 30,000 ms. */
  readonly intervalMs?: number;
  /** The connection is dropped when a ping goes unanswered this long. Default 10,000 ms. */
  readonly timeoutMs?: number;
}

export interface ClientOptions {
  /** One server, "host:port". */
  readonly address?: string;
  /** Several servers ("ip:port" each); calls are balanced over them with gRPC's round_robin policy. */
  readonly addresses?: readonly string[];
  /** Sent as `authorization: Bearer <apiKey>` on every call. */
  readonly apiKey?: string;
  /** TLS (and mutual TLS with cert and key); plaintext when absent. */
  readonly tls?: TlsOptions;
  /** Deadline of a call that sets no timeoutMs. Default 30,000 ms. */
  readonly defaultTimeoutMs?: number;
  readonly retry?: RetryOptions;
  readonly keepalive?: KeepaliveOptions;
  /**
   * Extra grpc-js channel options, e.g. { "grpc.max_receive_message_length": 128 << 20 }. Given, predictions
   * ride grpc-js too, not the SDK's own HTTP/2 connection.
   */
  readonly channelOptions?: ChannelOptions;
}

/** Options every call takes. */
export interface CallOptions {
  /** This call's deadline, from now. */
  readonly timeoutMs?: number;
  /** Aborting cancels the call (and removes it from the server's queue where it is still waiting). */
  readonly signal?: AbortSignal;
}

import { connect, type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders, type SecureClientSessionOptions } from "node:http2";
import type { ClientOptions, KeepaliveOptions } from "../client-options.js";
import { AiaasError, Code } from "../errors.js";

const WINDOW = 4 << 20;

interface Live {
  readonly session: ClientHttp2Session;
  streams: number;
  pinger: NodeJS.Timeout | undefined;
}

/**
 * One HTTP/2 connection to one server, made on first use and made again once it has closed, failed or received
 * GOAWAY (its open streams finish on the old one). It holds the process open only while a stream is open on
 * it, so a script that stops calling exits; while streams are open it pings, so a peer that vanished without
 * a word (a dropped NAT entry, a dead host) fails them within intervalMs + timeoutMs instead of at each
 * call's deadline.
 */
export class H2Connection {
  private live: Live | undefined;
  private closed = false;
  /** Called with each new connection's GOAWAY, for streams that should move to the next connection. */
  readonly onGoaway = new Set<(session: ClientHttp2Session) => void>();

  constructor(
    private readonly url: string,
    private readonly options: SecureClientSessionOptions,
    private readonly keepalive: Required<KeepaliveOptions>,
  ) {}

  /**
   * Opens a stream (POST) on the current connection. Throws an AiaasError when it cannot (UNAVAILABLE, or
   * FAILED_PRECONDITION once closed); the stream reports later failures as 'error'.
   */
  request(headers: OutgoingHttpHeaders): { stream: ClientHttp2Stream; session: ClientHttp2Session } {
    if (this.closed) throw new AiaasError(Code.FAILED_PRECONDITION, "the client is closed; create another");
    let live: Live;
    let stream: ClientHttp2Stream;
    try {
      live = this.current();
      stream = live.session.request(headers, { endStream: false });
    } catch (error) {
      throw new AiaasError(Code.UNAVAILABLE, `could not open a stream to ${this.url}: ${(error as Error).message}`);
    }
    if (live.streams++ === 0) this.hold(live);
    stream.once("close", () => {
      if (--live.streams === 0) this.release(live);
    });
    return { stream, session: live.session };
  }

  close(): void {
    this.closed = true;
    const live = this.live;
    this.live = undefined;
    if (live) {
      this.release(live);
      live.session.close();
    }
  }

  private current(): Live {
    const live = this.live;
    if (live && !live.session.closed && !live.session.destroyed) return live;
    const session = connect(this.url, { ...this.options, maxSessionMemory: Number.MAX_SAFE_INTEGER, settings: { initialWindowSize: WINDOW } });
    // One stream carries many calls' answers: a window of 64 KiB (HTTP/2's default) would pace them by round trips.
    session.once("connect", () => session.setLocalWindowSize(WINDOW));
    const next: Live = { session, streams: 0, pinger: undefined };
    // A connection's failure reaches its streams as their own 'error'; this listener only keeps it from
    // being an uncaught exception, and drops the connection so the next call makes a new one.
    session.on("error", () => this.forget(next));
    session.on("close", () => this.forget(next));
    session.on("goaway", () => {
      this.forget(next);
      for (const listener of this.onGoaway) listener(session);
    });
    session.unref();
    this.live = next;
    return next;
  }

  private forget(live: Live): void {
    if (this.live === live) this.live = undefined;
    if (live.session.destroyed && live.pinger) {
      clearInterval(live.pinger);
      live.pinger = undefined;
    }
  }

  private hold(live: Live): void {
    live.session.ref();
    live.pinger ??= setInterval(() => this.ping(live), this.keepalive.intervalMs).unref();
  }

  private release(live: Live): void {
    if (live.pinger) clearInterval(live.pinger);
    live.pinger = undefined;
    if (!live.session.destroyed) live.session.unref();
  }

  private ping(live: Live): void {
    // A ping on a connection still connecting, or draining after GOAWAY, is cancelled at once: not a dead peer.
    if (live.session.destroyed || live.session.closed || live.session.connecting) return;
    const timer = setTimeout(
      () => live.session.destroy(new Error(`the server did not answer a keepalive ping within ${this.keepalive.timeoutMs} ms`)),
      this.keepalive.timeoutMs,
    ).unref();
    const sent = live.session.ping((error) => {
      clearTimeout(timer);
      if (error && !live.session.destroyed && !live.session.closed) live.session.destroy(error);
    });
    if (!sent) clearTimeout(timer); // too many pings unanswered: an earlier one's timer decides
  }
}

/** The HTTP/2 URL and connection options of a client's one address, or undefined when only grpc-js can reach it. */
export function h2Target(options: ClientOptions): { url: string; options: SecureClientSessionOptions } | undefined {
  if (options.channelOptions || options.addresses) return undefined;
  const address = options.address ?? "";
  // host:port or [v6]:port; grpc-js names (dns:///, unix:, ipv4:) stay with grpc-js.
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(address)) return undefined;
  if (!options.tls) return { url: `http://${address}`, options: {} };
  const { ca, cert, key } = options.tls;
  const buf = (v: string | Uint8Array | undefined): Buffer | undefined => (v === undefined ? undefined : Buffer.from(v));
  return { url: `https://${address}`, options: { ca: buf(ca), cert: buf(cert), key: buf(key) } };
}

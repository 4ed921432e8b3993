import { Channel, credentials, type ChannelCredentials, type ChannelOptions } from "@grpc/grpc-js";
import { isIP } from "node:net";
import { AiaasError, Code } from "../errors.js";
import type { ClientOptions, KeepaliveOptions } from "../client-options.js";

/** One channel for all of a client's services: target, credentials and options from ClientOptions. */
export function createChannel(options: ClientOptions): Channel {
  return new Channel(target(options), channelCredentials(options), channelOptions(options));
}

/** The addresses a client was given: `addresses`, or its one `address`. */
export function addressesOf(options: ClientOptions): readonly string[] {
  return options.addresses ?? (options.address ? [options.address] : []);
}

/** The keepalive a client's options ask for, defaults filled in. */
export function keepaliveOf(options: ClientOptions): Required<KeepaliveOptions> {
  return { intervalMs: options.keepalive?.intervalMs ?? 30_000, timeoutMs: options.keepalive?.timeoutMs ?? 10_000 };
}

function target(options: ClientOptions): string {
  const addresses = addressesOf(options);
  if (addresses.length === 0) throw new AiaasError(Code.INVALID_ARGUMENT, "createClient needs an address (host:port) or addresses");
  if (addresses.length === 1) return addresses[0];
  // grpc-js balances over a static list only for IP literals (ipv4:/ipv6: targets); a DNS name with several
  // records is the way to name several hosts.
  const hosts = addresses.map((a) => {
    const host = a.startsWith("[") ? a.slice(1, a.indexOf("]")) : a.slice(0, a.lastIndexOf(":"));
    return { a, family: isIP(host) };
  });
  const family = hosts[0].family;
  if (family === 0 || hosts.some((h) => h.family !== family)) {
    throw new AiaasError(Code.INVALID_ARGUMENT, "several addresses must all be IPv4 or all IPv6 literals with ports; for host names use one dns:/// address whose name has several records");
  }
  return `${family === 4 ? "ipv4" : "ipv6"}:${addresses.join(",")}`;
}

function channelCredentials(options: ClientOptions): ChannelCredentials {
  if (!options.tls) return credentials.createInsecure();
  const buf = (v: string | Uint8Array | undefined): Buffer | null => (v === undefined ? null : Buffer.from(v));
  return credentials.createSsl(buf(options.tls.ca), buf(options.tls.key), buf(options.tls.cert));
}

function channelOptions(options: ClientOptions): ChannelOptions {
  return {
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    "grpc.max_send_message_length": 64 * 1024 * 1024,
    // Keep idle connections alive through proxies and notice dead peers.
    "grpc.keepalive_time_ms": keepaliveOf(options).intervalMs,
    "grpc.keepalive_timeout_ms": keepaliveOf(options).timeoutMs,
    "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
    ...options.channelOptions,
  };
}

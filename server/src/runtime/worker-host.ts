// The worker side of the runtime's protocol: opens the worker's sessions, reports ready (or failed), then
// answers calls one message at a time. A failed call hands back the buffers it was sent.
import { parentPort } from "node:worker_threads";
import type { ProviderName } from "./execution-providers.js";
import type { WorkerCall, WorkerMessage } from "./worker-protocol.js";

/** A method's answer: its value and the buffers to transfer with it. */
export interface MethodReply {
  readonly value: unknown;
  readonly transfer?: readonly ArrayBuffer[];
}

export interface HostedWorker<Info> {
  readonly provider: ProviderName;
  readonly fallbackReason?: string;
  readonly info: Info;
  /** The worker's methods by name; `returned(payload)` names the buffers a failed call hands back. */
  readonly methods: Readonly<Record<string, (payload: never) => Promise<MethodReply> | MethodReply>>;
  readonly returned?: (method: string, payload: never) => readonly ArrayBuffer[];
  /** Releases the sessions (before the thread ends: ending first aborts Node with a Napi::Error). */
  close(): Promise<void>;
}

export function hostWorker<Info>(open: () => Promise<HostedWorker<Info>>): void {
  const port = parentPort!;
  const post = (message: WorkerMessage<Info>, transfer: readonly ArrayBuffer[] = []): void => port.postMessage(message, [...transfer]);
  void open().then(
    (worker) => {
          port.on("message", (call: WorkerCall) => void answer(worker, call, post, () => port.close()));
      post({ kind: "ready", provider: worker.provider, fallbackReason: worker.fallbackReason, info: worker.info });
    },
    (error: unknown) => post({ kind: "failed", message: error instanceof Error ? error.message : String(error) }),
  );
}

async function answer<Info>(worker: HostedWorker<Info>, call: WorkerCall, post: (m: WorkerMessage<Info>, t?: readonly ArrayBuffer[]) => void, end: () => void): Promise<void> {
  try {
    if (call.method === "close") {
      await worker.close();
      post({ kind: "reply", id: call.id, value: undefined });
      end();
      return;
    }
    if (call.method === "inject-fault") return injectFault(call, post);
    const method = worker.methods[call.method];
    if (!method) throw new Error(`the worker has no method "${call.method}"`);
    const reply = await method(call.payload as never);
    post({ kind: "reply", id: call.id, value: reply.value }, reply.transfer);
  } catch (error) {
    const returned = worker.returned?.(call.method, call.payload as never) ?? [];
    post({ kind: "error", id: call.id, message: error instanceof Error ? error.message : String(error), returned }, returned);
  }
}

/** A run blocks this long when a "hang" fault was injected (test hooks only). */
let injectedHangMs = 0;

/** Consumes an injected hang: blocks the thread as a stuck native run would. */
export function hangIfInjected(): void {
  if (injectedHangMs <= 0) return;
  const until = Date.now() + injectedHangMs;
  injectedHangMs = 0;
  while (Date.now() < until) {
    // a stuck run: nothing else runs on this thread until it returns
  }
}

function injectFault<Info>(call: WorkerCall, post: (m: WorkerMessage<Info>) => void): void {
  if (process.env.AIAAS_TEST_HOOKS !== "1") throw new Error("fault injection needs AIAAS_TEST_HOOKS=1 in the server's environment");
  const fault = call.payload as { kind: "exit" } | { kind: "hang"; ms: number };
  if (fault.kind === "exit") process.exit(70);
  injectedHangMs = fault.ms;
  post({ kind: "reply", id: call.id, value: undefined });
}

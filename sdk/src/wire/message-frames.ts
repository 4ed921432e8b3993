const PREFIX = 5;

/**
 * Splits a stream's bytes into gRPC messages (a flag byte, a 4-byte big-endian length, the payload). A message
 * whole inside one chunk is handed out as a view of the chunk, with no copy; one split across chunks is copied
 * once into a buffer of its announced size, so a large message arriving in many pieces costs one copy, not a
 * concatenation per piece.
 */
export class MessageFrames {
  private readonly head = Buffer.alloc(PREFIX);
  private headBytes = 0;
  private body: Buffer | undefined;
  private bodyCompressed = false;
  private filled = 0;

  /**
   * @param maxLength the longest message taken, in bytes (-1: any)
   * @param onMessage called with each whole message, in order
   */
  constructor(
    private readonly maxLength: number,
    private readonly onMessage: (compressed: boolean, payload: Buffer) => void,
  ) {}

  /** Whether bytes of an unfinished message are held (a half-close now would cut it). */
  get midMessage(): boolean {
    return this.headBytes > 0 || this.body !== undefined;
  }

  /** Reads a chunk. Returns the announced length of a message over the limit (nothing more should be read), else -1. */
  read(chunk: Buffer): number {
    let at = 0;
    while (at < chunk.length) {
      if (this.body === undefined) {
        let compressed: boolean;
        let length: number;
        if (this.headBytes === 0 && chunk.length - at >= PREFIX) {
          compressed = chunk[at] === 1;
          length = chunk.readUInt32BE(at + 1);
          at += PREFIX;
        } else {
          const n = Math.min(PREFIX - this.headBytes, chunk.length - at);
          chunk.copy(this.head, this.headBytes, at, at + n);
          this.headBytes += n;
          at += n;
          if (this.headBytes < PREFIX) return -1;
          this.headBytes = 0;
          compressed = this.head[0] === 1;
          length = this.head.readUInt32BE(1);
        }
        if (this.maxLength !== -1 && length > this.maxLength) return length;
        if (chunk.length - at >= length) {
          this.onMessage(compressed, chunk.subarray(at, at + length));
          at += length;
          continue;
        }
        this.body = Buffer.allocUnsafe(length);
        this.bodyCompressed = compressed;
        this.filled = 0;
      }
      const n = Math.min(this.body.length - this.filled, chunk.length - at);
      chunk.copy(this.body, this.filled, at, at + n);
      this.filled += n;
      at += n;
      if (this.filled === this.body.length) {
        const body = this.body;
        this.body = undefined;
        this.onMessage(this.bodyCompressed, body);
      }
    }
    return -1;
  }
}

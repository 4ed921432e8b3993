/** Something with a deadline (Date.now() time) that fails itself when it passes. */
export interface Expiring {
  readonly deadline: number;
  expire(): void;
}

/**
 * One timer for many deadlines, armed for the earliest. A timer per call cost the client more CPU than the
 * call's own message on a shared stream (in Node each distinct duration is a timer list of its own); the
 * sweep that expires what is due and re-arms runs once per earliest deadline, not once per call.
 */
export class DeadlineSweeper {
  private timer: NodeJS.Timeout | undefined;
  private at = Infinity;

  /** `pending`: what may expire, read at each sweep. */
  constructor(private readonly pending: () => Iterable<Expiring>) {}

  /** Makes sure a sweep runs by `deadline`. */
  arm(deadline: number): void {
    if (deadline >= this.at) return;
    if (this.timer) clearTimeout(this.timer);
    this.at = deadline;
    this.timer = setTimeout(this.sweep, Math.max(0, deadline - Date.now()));
    // The calls' own stream keeps the process alive while they are pending; this timer need not.
    this.timer.unref();
  }

  /** Nothing pends any more. */
  disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.at = Infinity;
  }

  private readonly sweep = (): void => {
    this.timer = undefined;
    this.at = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const p of this.pending()) {
      if (p.deadline <= now) p.expire();
      else next = Math.min(next, p.deadline);
    }
    if (next < Infinity) this.arm(next);
  };
}

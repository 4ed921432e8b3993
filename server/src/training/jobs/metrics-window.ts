/** Training loss and accuracy over the steps since the last metrics event, and the rate they ran at. */
export class MetricsWindow {
  private loss = 0;
  private correct = 0;
  private rows = 0;
  private steps = 0;
  private started = performance.now();

  get stepCount(): number {
    return this.steps;
  }

  add(loss: number, correct: number, rows: number): void {
    this.loss += loss * rows;
    this.correct += correct;
    this.rows += rows;
    this.steps++;
  }

  /** The window's means and examples per second; starts the next window. */
  close(): { loss: number; accuracy: number; examplesPerSecond: number } {
    const elapsed = (performance.now() - this.started) / 1000;
    const result = { loss: this.loss / this.rows, accuracy: this.correct / this.rows, examplesPerSecond: this.rows / Math.max(elapsed, 1e-9) };
    this.loss = this.correct = this.rows = this.steps = 0;
    this.started = performance.now();
    return result;
  }
}

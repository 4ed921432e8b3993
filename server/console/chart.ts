// Time series charts on uPlot (made for them: thousands of points, cheap appends).
import uPlot from "uplot";

export interface ChartSeries {
  readonly label: string;
  readonly color: string;
}

/** A chart of several series over one x axis (time in seconds, or steps); points are appended as they come. */
export class LiveChart {
  private readonly plot: uPlot;
  private readonly data: number[][];
  private scheduled = false;

  constructor(
    container: HTMLElement,
    title: string,
    series: readonly ChartSeries[],
    options: { time?: boolean; xLabel?: string; keep?: number } = {},
    private readonly keep = options.keep ?? 5000,
  ) {
    this.data = [[], ...series.map(() => [])];
    this.plot = new uPlot(
      {
        title,
        width: Math.max(320, container.clientWidth || 640),
        height: 220,
        scales: { x: { time: options.time ?? false } },
        axes: [{ label: options.xLabel }, {}],
        series: [{ label: options.xLabel ?? "time" }, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: true, points: { show: false } }))],
        legend: { live: true },
      },
      this.data as uPlot.AlignedData,
      container,
    );
    container.dataset.points = "0";
  }

  /** Adds one x with a value per series (null: no value there). */
  add(x: number, values: readonly (number | null)[]): void {
    this.data[0]!.push(x);
    values.forEach((v, i) => this.data[i + 1]!.push(v as number));
    if (this.data[0]!.length > this.keep) for (const column of this.data) column.shift();
    (this.plot.root.parentElement as HTMLElement).dataset.points = String(this.data[0]!.length);
    this.redraw();
  }

  /** One redraw per frame, however many points arrived in it (a job's history comes all at once). */
  private redraw(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.plot.setData(this.data as uPlot.AlignedData);
    });
  }

  clear(): void {
    for (const column of this.data) column.length = 0;
    this.redraw();
  }

  get points(): number {
    return this.data[0]!.length;
  }

  destroy(): void {
    this.plot.destroy();
  }
}

// The hot path's histograms and counters. The OpenTelemetry SDK hashes a record's attributes on every call
// (their keys sorted and JSON-encoded): the five records of a Predict cost ~8 KB of garbage (`npm run
// bench:heap`), and predict()'s three took ~4 µs in a loop on the development machine. These series are found
// by the identity of their attribute set (the sets are made once, per model version or per method and code),
// so a record is a few array writes; a MetricProducer hands them to the same readers (Prometheus, OTLP) at
// collection time, in the SDK's own cumulative format.
import type { Attributes, HrTime } from "@opentelemetry/api";
import { ValueType } from "@opentelemetry/api";
import { hrTime } from "@opentelemetry/core";
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type MetricData,
  type MetricProducer,
} from "@opentelemetry/sdk-metrics";
import { emptyResource } from "@opentelemetry/resources";

export interface InstrumentDescription {
  readonly name: string;
  readonly description: string;
  readonly unit?: string;
}

/** The SDK's default explicit buckets, so the exported histograms keep the shape they had. */
export const DEFAULT_BOUNDARIES: readonly number[] = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];

interface Series<V> {
  readonly attributes: Attributes;
  readonly startTime: HrTime;
  value: V;
}

/** Series per instrument, as the SDK's default cardinality limit: past it, records go to one overflow series. */
export const MAX_SERIES = 2000;
const OVERFLOW_KEY = "\u0000overflow";
const OVERFLOW: Attributes = { "otel.metric.overflow": true };

/** Series by their attribute set: by identity first, by content when a set is met for the first time. */
class SeriesTable<V> {
  private readonly byIdentity = new WeakMap<Attributes, Series<V>>();
  private readonly byContent = new Map<string, Series<V>>();

  constructor(private readonly initial: () => V) {}

  get(attributes: Attributes): Series<V> {
    let series = this.byIdentity.get(attributes);
    if (series) return series;
    // A set made anew for each record still lands in one series (slower, never wrong).
    let key = JSON.stringify(Object.keys(attributes).sort().map((k) => [k, attributes[k]]));
    let own = attributes;
    if (!this.byContent.has(key) && this.byContent.size >= MAX_SERIES - 1) {
      key = OVERFLOW_KEY;
      own = OVERFLOW;
    }
    series = this.byContent.get(key);
    if (!series) this.byContent.set(key, (series = { attributes: { ...own }, startTime: hrTime(), value: this.initial() }));
    this.byIdentity.set(attributes, series);
    return series;
  }

  all(): IterableIterator<Series<V>> {
    return this.byContent.values();
  }
}

interface HistogramValue {
  readonly counts: number[];
  count: number;
  sum: number;
  min: number;
  max: number;
}

export class HotHistogram {
  private readonly table: SeriesTable<HistogramValue>;

  constructor(
    readonly description: InstrumentDescription,
    private readonly boundaries: readonly number[] = DEFAULT_BOUNDARIES,
  ) {
    this.table = new SeriesTable(() => ({ counts: new Array<number>(boundaries.length + 1).fill(0), count: 0, sum: 0, min: Infinity, max: -Infinity }));
  }

  record(value: number, attributes: Attributes): void {
    if (!recording || !Number.isFinite(value)) return;
    const v = this.table.get(attributes).value;
    v.count++;
    v.sum += value;
    if (value < v.min) v.min = value;
    if (value > v.max) v.max = value;
    // Boundaries are inclusive upper bounds; the last bucket takes the rest.
    const b = this.boundaries;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    v.counts[i]!++;
  }

  collect(endTime: HrTime): MetricData {
    return {
      descriptor: descriptor(this.description),
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: [...this.table.all()].map((s) => ({
        attributes: s.attributes,
        startTime: s.startTime,
        endTime,
        value: { buckets: { boundaries: [...this.boundaries], counts: [...s.value.counts] }, count: s.value.count, sum: s.value.sum, min: s.value.min, max: s.value.max },
      })),
    };
  }
}

export class HotCounter {
  private readonly table = new SeriesTable(() => 0);

  constructor(readonly description: InstrumentDescription) {}

  add(n: number, attributes: Attributes): void {
    if (!recording) return;
    this.table.get(attributes).value += n;
  }

  collect(endTime: HrTime): MetricData {
    return {
      descriptor: descriptor(this.description),
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      dataPoints: [...this.table.all()].map((s) => ({ attributes: s.attributes, startTime: s.startTime, endTime, value: s.value })),
    };
  }
}

const descriptor = (d: InstrumentDescription) => ({ name: d.name, description: d.description, unit: d.unit ?? "", valueType: ValueType.DOUBLE });

/** Nothing is recorded until a reader asks for these (telemetry/setup.ts), as with the API's no-op meters. */
let recording = false;

/** A MetricProducer of these instruments for the readers of the SDK; recording starts with it. */
export function hotMetricProducer(scope: string, instruments: () => readonly (HotHistogram | HotCounter)[]): MetricProducer {
  recording = true;
  return {
    async collect(): Promise<CollectionResult> {
      const endTime = hrTime();
      const metrics = instruments().map((i) => i.collect(endTime)).filter((m) => m.dataPoints.length > 0);
      return { resourceMetrics: { resource: emptyResource(), scopeMetrics: [{ scope: { name: scope }, metrics }] }, errors: [] };
    },
  };
}

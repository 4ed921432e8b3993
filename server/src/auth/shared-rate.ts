import { resourceExhausted } from "../common/errors.js";
import type { Logger } from "pino";
import type { Database } from "../state/index.js";

/** One tenant's part of its cluster-wide rate held by this replica. */
interface Share {
  /** Tokens this replica may spend; below zero it spent on credit (repaid by the next grant). */
  tokens: number;
  /** A grant is being fetched. */
  fetching: boolean;
  /** performance.now() of the last grant fetched (or tried). */
  fetchedAt: number;
  /** The central bucket had nothing left at the last grant. */
  dry: boolean;
}

export interface RateLimit {
  readonly requestsPerSecond: number;
  readonly burst: number;
}

/** How much of the rate one grant takes: 50 ms worth, so a grant is one query per 50 ms per busy replica. */
const GRANT_SECONDS = 0.05;

/**
 * A tenant's request rate shared by every replica: one token bucket per tenant in the database (refilled at the
 * tenant's rate up to its burst), from which each replica takes small grants ahead of need, and admits requests
 * against its grant in memory, so no request waits on the database. A replica whose grant ran out admits a
 * request on credit (at most half a grant) while the next grant is fetched; the credit is repaid from it. When
 * the bucket is dry a replica asks again no sooner than one token's time later. In all, the tenant gets its rate
 * across the replicas (plus the credits outstanding: half a grant per replica). While the database cannot be
 * reached, each replica grants itself the tokens it asked for: serving goes on, limited per replica.
 */
export class SharedRate {
  private readonly shares = new Map<string, Share>();
  private unreachableSince: number | undefined;

  constructor(
    private readonly db: Database,
    private readonly logger?: Logger,
  ) {}

  take(tenant: string, limit: RateLimit): void {
    let share = this.shares.get(tenant);
    if (!share) this.shares.set(tenant, (share = { tokens: 0, fetching: false, fetchedAt: -Infinity, dry: false }));
    const grant = grantSize(limit);
    const credit = Math.max(1, Math.floor(grant / 2));
    if (share.tokens < grant / 2) this.refill(tenant, share, limit);
    if (share.tokens >= 1 || (!share.dry && share.tokens > -credit)) {
      share.tokens -= 1;
      return;
    }
    const waitMs = Math.max(1, Math.ceil(1000 / limit.requestsPerSecond));
    throw resourceExhausted(`tenant "${tenant}" is over its rate limit of ${limit.requestsPerSecond} requests/s (across all replicas); retry in ${waitMs} ms`, waitMs);
  }

  private refill(tenant: string, share: Share, limit: RateLimit): void {
    const now = performance.now();
    // A dry bucket gains one token per 1/rate s: asking sooner only loads the database.
    if (share.fetching || (share.dry && now - share.fetchedAt < 1000 / limit.requestsPerSecond)) return;
    share.fetching = true;
    share.fetchedAt = now;
    const want = grantSize(limit) + Math.max(0, -share.tokens);
    this.grant(tenant, want, limit).then(
      (granted) => {
        share.tokens += granted;
        share.dry = granted < want;
        this.unreachableSince = undefined;
      },
      (error: unknown) => {
        // The database is unreachable: serving goes on, each replica admitting up to the tenant's rate on its
        // own (a tenant may get up to its rate times the replicas until the database answers again).
        share.tokens += want;
        share.dry = false;
        if (this.unreachableSince === undefined) {
          this.unreachableSince = Date.now();
          this.logger?.warn({ err: error }, "the shared rate limits cannot be read from the database: each replica limits tenants on its own until it answers");
        }
      },
    ).finally(() => (share.fetching = false));
  }

  /** Takes up to `want` whole tokens from the tenant's bucket, refilled for the time since it was last touched. */
  private async grant(tenant: string, want: number, limit: RateLimit, seeded = false): Promise<number> {
    const now = Date.now();
    const rows = await this.db.query<{ granted: string | number }>(
      `WITH seed AS (
         INSERT INTO rate_buckets (tenant, tokens, updated_ms) VALUES ($1, $3, $4) ON CONFLICT (tenant) DO NOTHING
       ), b AS (
         SELECT tenant, LEAST($3::float8, tokens + GREATEST(0, $4 - updated_ms) / 1000.0 * $5) AS t
         FROM rate_buckets WHERE tenant = $1 FOR UPDATE
       )
       UPDATE rate_buckets r SET tokens = b.t - FLOOR(LEAST(b.t, $2)), updated_ms = $4
       FROM b WHERE r.tenant = b.tenant RETURNING FLOOR(LEAST(b.t, $2)) AS granted`,
      [tenant, want, limit.burst, now, limit.requestsPerSecond],
    );
    // The first grant of a tenant: the row was only just seeded (a CTE's insert is not visible to its siblings).
    if (rows.length === 0) return seeded ? 0 : this.grant(tenant, want, limit, true);
    return Number(rows[0]!.granted);
  }
}

const grantSize = (limit: RateLimit): number => Math.max(1, Math.min(limit.burst, Math.floor(limit.requestsPerSecond * GRANT_SECONDS)));

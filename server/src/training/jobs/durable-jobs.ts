import type { ModelRegistry } from "../../serving/index.js";
import type { Database } from "../../state/index.js";
import type { JobFeed } from "./job-view.js";
import type { DataJournal } from "./data-journal.js";
import type { SqlJobJournal } from "./sql-job-journal.js";

/** What makes jobs outlive the process: their journal in the state database and their uploads on disk. */
export interface DurableJobs {
  readonly journal: SqlJobJournal;
  readonly data: DataJournal;
  /** The registry a job taken up after a restart resolves its base model in and publishes into (its owner's). */
  readonly registryFor: (tenant: string | undefined) => ModelRegistry;
  /** The state database (its notifications carry jobs' events, cancel requests and released leases). */
  readonly db: Database;
  /** Whether replicas share the database: each job is then leased by the replica that runs it, and read from the database. */
  readonly shared: boolean;
  /** Followers of jobs' stored events. */
  readonly feed: JobFeed;
}

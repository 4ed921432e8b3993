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
  /** The state database (its notifications carry jobs' events, cancel requests and released leases); `db.shared`: replicas share it, so each job is leased by the replica that runs it. */
  readonly db: Database;
  /** Followers of jobs' stored events. */
  readonly feed: JobFeed;
}

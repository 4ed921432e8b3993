import { InvalidArgumentError, type Command } from "commander";
import type { AiaasClient, JobInfo } from "@aiaas/sdk";
import { examples, table, toJson } from "./table.js";

interface JobsOptions {
  readonly json?: boolean;
}

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

function jobRows(jobs: readonly JobInfo[]): string {
  if (jobs.length === 0) return "no jobs";
  // The tenant column appears when the caller sees several tenants' jobs (an admin key).
  const tenants = jobs.some((j) => j.tenant !== (jobs[0]?.tenant ?? ""));
  const header = ["JOB", ...(tenants ? ["TENANT"] : []), "MODEL", "STATE", "STEP", "VERSION", "CREATED", "ERROR"];
  const rows = jobs.map((j) => [
    j.id,
    ...(tenants ? [j.tenant || "-"] : []),
    j.model,
    j.state,
    `${j.step}/${j.totalSteps}`,
    j.publishedVersion || "-",
    j.created.toISOString().replace(/\.\d+Z$/, "Z"),
    j.error ? j.error.message.slice(0, 80) : "",
  ]);
  return table(header, rows);
}

/** The job once a cancel has taken effect (the job stops between steps), or as it is after `waitMs`. */
async function settled(client: AiaasClient, id: string, waitMs: number): Promise<JobInfo> {
  const until = Date.now() + waitMs;
  for (;;) {
    const job = await client.jobs.get(id);
    if (TERMINAL.has(job.state) || Date.now() >= until) return job;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * `aiaas jobs list | get | cancel | watch`. Exit codes as every client command: 0 done, 1 the server refused,
 * 2 usage. Cancelling a job that had already ended is not an error: it says so and exits 0 (the job is not
 * running either way, as `docker stop` of a stopped container).
 */
export function addJobsCommand(
  program: Command,
  connection: (c: Command) => Command,
  guard: (work: () => Promise<void>) => Promise<void>,
  connect: (opts: never) => AiaasClient,
): void {
  const jobs = program
    .command("jobs")
    .description("training jobs on a server: list, get, cancel, watch")
    .addHelpText("after", examples("aiaas jobs list", "aiaas jobs get 0b6c… --json", "aiaas jobs watch 0b6c… | head"))
    // Bare `aiaas jobs` prints its help on stdout and exits 0, as `kubectl config` does.
    .action(() => jobs.help());
  const withClient = (opts: never, work: (client: AiaasClient) => Promise<void>) =>
    guard(async () => {
      const client = connect(opts);
      try {
        await work(client);
      } finally {
        client.close();
      }
    });
  connection(jobs.command("list").description("list jobs, newest first (an admin key sees every tenant's)"))
    .option("--tenant <name>", "admin keys: only this tenant's jobs")
    .option("--json", "print JSON instead of a table")
    .addHelpText("after", examples("aiaas jobs list", "aiaas jobs list --tenant acme --json"))
    .action((opts: JobsOptions & { tenant?: string }) =>
      withClient(opts as never, async (client) => {
        const list = await client.jobs.list({ tenant: opts.tenant });
        console.log(opts.json ? toJson(list, 2) : jobRows(list));
      }),
    );
  connection(jobs.command("get <job-id>").description("show a job"))
    .option("--json", "print JSON instead of a table")
    .addHelpText("after", examples("aiaas jobs get 0b6c4d1e-…", "aiaas jobs get 0b6c4d1e-… --json"))
    .action((id: string, opts: JobsOptions) =>
      withClient(opts as never, async (client) => {
        const job = await client.jobs.get(id);
        console.log(opts.json ? toJson(job, 2) : jobRows([job]));
      }),
    );
  connection(jobs.command("cancel <job-id>").description("cancel a job (nothing is published) and print its state once the cancel took effect"))
    .option("--json", "print JSON instead of a table")
    .option("--wait-ms <n>", "how long to wait for the job to stop", (v) => Number(v), 30_000)
    .addHelpText("after", examples("aiaas jobs cancel 0b6c4d1e-…"))
    .action((id: string, opts: JobsOptions & { waitMs: number }) =>
      withClient(opts as never, async (client) => {
        const before = await client.jobs.get(id);
        if (TERMINAL.has(before.state)) {
          console.log(opts.json ? toJson(before, 2) : `job ${id} had already ${before.state}; nothing to cancel`);
          return;
        }
        await client.jobs.cancel(id);
        const after = await settled(client, id, opts.waitMs);
        console.log(opts.json ? toJson(after, 2) : jobRows([after]));
      }),
    );
  connection(jobs.command("watch <job-id>").description("print a job's events as JSON lines until it ends"))
    .option("--after <event-id>", "skip events up to this id", (v) => {
      if (!/^[0-9]+$/.test(v)) throw new InvalidArgumentError("expected an event id (a whole number)");
      return v;
    }, "0")
    .addHelpText("after", examples("aiaas jobs watch 0b6c4d1e-…", "aiaas jobs watch 0b6c4d1e-… --after 12 | jq .type"))
    .action((id: string, opts: { after: string }) =>
      withClient(opts as never, async (client) => {
        for await (const e of client.jobs.watch(id, { afterEventId: BigInt(opts.after) })) console.log(toJson(e));
      }),
    );
}

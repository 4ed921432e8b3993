// Screenshots of each console page for docs/console/ (linked from the README): a real server with keys,
// traffic from two tenants and a training job, shown in Debian's Chromium. `npm run console:screenshots`.
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium, type Page } from "playwright-core";
import { Tensor } from "@aiaas/sdk";
import { startConsoleFixture, trainingChunks, trainingSpec } from "../test/support/console-fixture.js";

const out = fileURLToPath(new URL("../docs/console/", import.meta.url));
mkdirSync(out, { recursive: true });
const f = await startConsoleFixture();
const browser = await chromium.launch({ executablePath: process.env.AIAAS_CHROMIUM ?? "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
try {
  const page = await context.newPage();
  const shot = async (p: Page, name: string): Promise<void> => {
    await p.screenshot({ path: `${out}${name}.png`, fullPage: false });
    console.log(`docs/console/${name}.png`);
  };
  await page.goto(f.url);
  await page.waitForSelector("#sign-in");
  await shot(page, "sign-in");
  await page.fill("#api-key", f.tokens.admin);
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector("#models");
  await page.click("a[href='#/traffic']");
  // Twenty seconds of traffic from two tenants, one of them sending a bad request now and then, and a job.
  let jobId = "";
  const job = (async () => {
    for await (const event of f.client("alpha").train(trainingSpec("digits", 30), trainingChunks(16))) jobId = event.jobId;
  })();
  const alpha = f.client("alpha");
  const beta = f.client("beta");
  const started = Date.now();
  for (let i = 0; Date.now() - started < 20_000; i++) {
    const rows = 1 + (i % 8);
    await Promise.all([
      alpha.predict("alpha-model", { x: Tensor.float32([rows, 4], new Float32Array(rows * 4).fill(1)) }),
      beta.predict("shared", { x: Tensor.float32([1, 4], [1, 2, 3, 4]) }),
      i % 50 === 0 ? beta.predict("beta-model", { x: Tensor.float32([1, 3], [1, 2, 3]) }).catch(() => undefined) : undefined,
    ]);
  }
  await page.waitForTimeout(2500);
  await shot(page, "traffic");
  await job;
  await page.click("a[href='#/jobs']");
  await page.waitForSelector(`#jobs tr[data-job='${jobId}']`);
  await shot(page, "jobs");
  await page.click("a[href='#/keys']");
  await page.waitForSelector("#keys");
  await shot(page, "keys");
  // A tenant's view: its own models (the trained one among them) and its job.
  const tenant = await context.newPage();
  await tenant.goto(f.url);
  await tenant.fill("#api-key", f.tokens.alpha);
  await tenant.click("#sign-in button[type=submit]");
  await tenant.waitForSelector("#models tr[data-model='digits']");
  await shot(tenant, "models");
  await tenant.goto(`${f.url}/#/jobs/${jobId}`);
  await tenant.waitForSelector("#job-published a");
  await tenant.waitForTimeout(500);
  await shot(tenant, "job");
} finally {
  await browser.close();
  await f.close();
}

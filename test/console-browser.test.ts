// The console in a real browser (Debian's Chromium, headless, driven by playwright-core) against a real server
// with API keys: sign in with a tenant key and an admin key, watch predictions move the traffic chart and a
// training job's loss curve grow while it runs, revoke a key and see the SDK refused. Skips, saying so,
// where /usr/bin/chromium is missing (`apt-get install chromium`; `.ci/run` installs it).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { Code, Tensor } from "@aiaas/sdk";
import { startConsoleFixture, trainingChunks, trainingSpec, type ConsoleFixture } from "./support/console-fixture.js";

const CHROMIUM = process.env.AIAAS_CHROMIUM ?? "/usr/bin/chromium";
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}: apt-get install chromium (or set AIAAS_CHROMIUM)`;

/** Signs in on a fresh page with `token`; returns the page on the Models page. */
async function signIn(browser: Browser, url: string, token: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(url);
  await page.fill("#api-key", token);
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector("#models");
  return page;
}

const points = async (page: Page, chart: string): Promise<number> => Number(await page.getAttribute(`#chart-${chart}`, "data-points"));

describe("the console in Chromium", { skip }, () => {
  let f: ConsoleFixture;
  let browser: Browser;
  const urls: string[] = [];
  before(async () => {
    f = await startConsoleFixture();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    browser.on("disconnected", () => undefined);
  });
  after(async () => {
    await browser?.close();
    await f?.close();
  });
  const watchUrls = (page: Page): void => {
    page.on("request", (request) => urls.push(request.url()));
  };

  it("a tenant key signs in and sees its own and the public models, never another tenant's", async () => {
    const page = await signIn(browser, f.url, f.tokens.alpha);
    watchUrls(page);
    assert.match(await page.textContent("#who") ?? "", /tenant alpha/);
    const models = await page.$$eval("#models tbody tr[data-model]", (rows) => rows.map((r) => r.getAttribute("data-model")));
    assert.deepEqual([...new Set(models)].sort(), ["alpha-model", "shared"]);
    assert.equal(await page.$("a[href='#/keys']"), null, "no Keys page for a tenant key");
    assert.equal(await page.evaluate("document.cookie"), "", "no cookie");
    assert.equal(await page.evaluate('sessionStorage.getItem("aiaas.key")'), f.tokens.alpha, "the key lives in the tab's sessionStorage");
    await page.close();
  });

  it("predictions move the traffic chart; the tenant's table shows its model and not the other tenant's", async () => {
    const page = await signIn(browser, f.url, f.tokens.alpha);
    watchUrls(page);
    await page.click("a[href='#/traffic']");
    await page.waitForSelector("#chart-requests[data-points]");
    const before = await points(page, "requests");
    const alpha = f.client("alpha");
    const beta = f.client("beta");
    const started = Date.now();
    while (Date.now() - started < 5000) {
      await alpha.predict("alpha-model", { x: Tensor.float32([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]) });
      await beta.predict("beta-model", { x: Tensor.float32([1, 4], [1, 2, 3, 4]) });
      // Paced well under the tenants' default 1,000 requests/s: traffic for the chart, not a flood.
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await page.waitForSelector("#traffic-now tr[data-model='alpha-model']", { timeout: 10_000 });
    assert.ok((await points(page, "requests")) > before, "the chart gained points");
    assert.equal(await page.$("#traffic-now tr[data-model='beta-model']"), null, "beta's traffic never shows to alpha");
    const rate = Number(await page.textContent("#traffic-now tr[data-model='alpha-model'] td:nth-child(2)"));
    assert.ok(rate > 0, `requests per second shown (${rate})`);
    const options = await page.$$eval("#traffic-model option", (o) => o.map((e) => e.getAttribute("value") ?? ""));
    assert.ok(options.includes("alpha-model:1") && !options.some((o) => o.startsWith("beta-model")));
    await page.close();
  });

  it("a job started through the SDK shows live: its loss curve gains points while it runs, then its published version", async () => {
    const client = f.client("alpha");
    // The upload's last chunk waits for the page: the job trains only once its data is complete, so every
    // step it takes happens while the page watches.
    let pageReady!: () => void;
    const ready = new Promise<void>((resolve) => (pageReady = resolve));
    async function* upload() {
      const chunks = [...trainingChunks(16)];
      for (const [i, chunk] of chunks.entries()) {
        if (i === chunks.length - 1) await ready;
        yield chunk;
      }
    }
    const events = client.train(trainingSpec("browser-job", 60), upload())[Symbol.asyncIterator]();
    const first = await events.next();
    const jobId = first.value!.jobId;
    const page = await signIn(browser, f.url, f.tokens.alpha);
    watchUrls(page);
    await page.click("a[href='#/jobs']");
    await page.waitForSelector(`#jobs tr[data-job='${jobId}']`);
    await page.click(`#jobs tr[data-job='${jobId}'] a`);
    await page.waitForSelector("#chart-loss[data-points]");
    assert.equal(await points(page, "loss"), 0, "no step before the data is complete");
    pageReady();
    let running = true;
    const draining = (async () => {
      for (let e = await events.next(); !e.done; e = await events.next());
      running = false;
    })();
    // Points arrive while the job runs: the count is seen at several values before it ends.
    const counts = new Set<number>();
    const started = Date.now();
    while (running) {
      counts.add(await points(page, "loss"));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await draining;
    const seconds = (Date.now() - started) / 1000;
    await page.waitForSelector("#job-published a", { timeout: 10_000 });
    const growing = [...counts].filter((c) => c > 0);
    assert.ok(growing.length >= 3, `the curve grew while the job ran for ${seconds} s (point counts seen: ${[...counts].join(", ")})`);
    assert.equal(await page.textContent("#job-published a"), "browser-job:1");
    assert.match((await page.textContent("#job-events")) ?? "", /completed: published browser-job:1/);
    await page.close();
  });

  it("Cancel on a job's page cancels it (the SDK's stream ends CANCELLED); Unload on the Models page unloads for a train key", async () => {
    const client = f.client("alpha");
    const events = client.train(trainingSpec("cancelled-job", 5000), trainingChunks(16))[Symbol.asyncIterator]();
    const jobId = (await events.next()).value!.jobId;
    const page = await signIn(browser, f.url, f.tokens.alpha);
    watchUrls(page);
    await page.goto(`${f.url}/#/jobs/${jobId}`);
    await page.waitForSelector("#job-summary .state-RUNNING", { timeout: 30_000 });
    await page.click("#cancel-job");
    await page.waitForSelector("#job-summary .state-CANCELLED", { timeout: 30_000 });
    await assert.rejects(
      (async () => {
        for (let e = await events.next(); !e.done; e = await events.next());
      })(),
      (e: { code: number }) => e.code === Code.CANCELLED,
    );
    await page.click("a[href='#/models']");
    await page.waitForSelector("#models tr[data-model='alpha-model'] button");
    await page.click("#models tr[data-model='alpha-model'] button:has-text('Unload')");
    await page.waitForSelector("#models tr[data-model='alpha-model'] .state-UNLOADED", { timeout: 15_000 });
    assert.equal((await client.models.get("alpha-model")).state, "unloaded");
    await page.click("#models tr[data-model='alpha-model'] button:has-text('Load')");
    await page.waitForSelector("#models tr[data-model='alpha-model'] .state-READY", { timeout: 15_000 });
    await page.close();
  });

  it("an admin revokes a key from the console and the next SDK call with it is refused", async () => {
    const reader = f.client("reader");
    await reader.predict("alpha-model", { x: Tensor.float32([1, 4], [1, 2, 3, 4]) });
    const page = await signIn(browser, f.url, f.tokens.admin);
    watchUrls(page);
    await page.click("a[href='#/keys']");
    await page.waitForSelector(`#keys tr[data-key='${f.keyIds.reader}'] button`);
    page.once("dialog", (dialog) => void dialog.accept());
    await page.click(`#keys tr[data-key='${f.keyIds.reader}'] button`);
    await page.waitForSelector(`#keys tr[data-key='${f.keyIds.reader}'] .state-REVOKED`);
    await assert.rejects(reader.predict("alpha-model", { x: Tensor.float32([1, 4], [1, 2, 3, 4]) }), (e: { code: number }) => e.code === Code.UNAUTHENTICATED);
    // A key made here is shown once, and works.
    await page.fill("#create-key input[name=tenant]", "beta");
    await page.click("#create-key button[type=submit]");
    const token = (await page.textContent("#new-token"))!;
    const session = (await (await fetch(`${f.url}/api/session`, { headers: { authorization: `Bearer ${token}` } })).json()) as { tenant: string };
    assert.equal(session.tenant, "beta");
    await page.close();
  });

  it("no key ever appears in a URL the pages requested, nor in the server's logs", () => {
    assert.ok(urls.length > 10, `the pages made requests (${urls.length})`);
    for (const secret of Object.values(f.tokens)) {
      assert.ok(!urls.some((u) => u.includes(secret)), "no key in a URL");
      assert.ok(!f.logs.some((l) => l.includes(secret)), "no key in the logs");
    }
  });
});

describe("the console with authentication off", { skip }, () => {
  it("says so in a banner and needs no sign-in", async () => {
    const f = await startConsoleFixture({ auth: false });
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage();
      await page.goto(f.url);
      await page.waitForSelector("#models");
      assert.match((await page.textContent("#banner")) ?? "", /Authentication is off/);
      assert.ok(await page.isVisible("#banner"));
    } finally {
      await browser.close();
      await f.close();
    }
  });
});

// The deployment material: Kubernetes objects validated against the Kubernetes schemas (kubernetes-models),
// KServe objects checked for what KServe needs (their pod parts validated as core Kubernetes), and every
// serve flag the manifests and the Dockerfile pass accepted by the real CLI.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { PersistentVolumeClaim, Pod, Secret, Service } from "kubernetes-models/v1";
import { parseAllDocuments } from "yaml";

const root = new URL("..", import.meta.url).pathname;
const load = async (path: string) => parseAllDocuments(await readFile(new URL(`../${path}`, import.meta.url), "utf8")).map((d) => d.toJS());

/** Starts the CLI with these serve arguments (ports and model path swapped for local ones) and waits until it listens. */
async function cliAccepts(args: string[]): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), "aiaas-deploy-"));
  const swap: Record<string, string> = {
    "--port": "0",
    "--http-port": "0",
    "--models": "models",
    "--host": "127.0.0.1",
    "--keys": join(scratch, "keys", "keys.json"),
    "--tenant-models": join(scratch, "tenant-models"),
    "--state-dir": join(scratch, "state"),
  };
  const local = args.map((a, i) => swap[args[i - 1]!] ?? a);
  const child = spawn(process.execPath, ["server/bin/aiaas.js", "serve", ...local, "--providers", "cpu"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += c));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => line.includes('"address"') && resolve());
    child.once("exit", (code) => reject(new Error(`aiaas serve ${local.join(" ")} exited with ${code}: ${stderr}`)));
  });
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
  rmSync(scratch, { recursive: true, force: true });
}

describe("deployment material", () => {
  it("Kubernetes: a valid Deployment with HTTP probes, a headless Service, a shared database and volume, a PDB and an HPA", async () => {
    const [deployment, service, claim, secret, pdb, hpa] = await load("deploy/kubernetes/aiaas.yaml");
    new Deployment(deployment).validate();
    new Service(service).validate();
    new PersistentVolumeClaim(claim).validate();
    new Secret(secret).validate();
    new PodDisruptionBudget(pdb).validate();
    new HorizontalPodAutoscaler(hpa).validate();
    const args: string[] = deployment.spec.template.spec.containers[0].args;
    const mounted = (flag: string) => deployment.spec.template.spec.containers[0].volumeMounts.some((m: { mountPath: string }) => args[args.indexOf(flag) + 1]!.startsWith(m.mountPath));
    assert.ok(mounted("--keys") && mounted("--tenant-models") && mounted("--models") && mounted("--state-dir"), "keys, models, tenant models and job state are on mounted volumes");
    assert.deepEqual(claim.spec.accessModes, ["ReadWriteMany"], "one volume every replica reads and writes");
    const env = deployment.spec.template.spec.containers[0].env as { name: string; valueFrom?: { secretKeyRef?: { name: string } } }[];
    assert.equal(env.find((e) => e.name === "AIAAS_DATABASE_URL")?.valueFrom?.secretKeyRef?.name, secret.metadata.name, "the database URL comes from the Secret");
    assert.ok(!args.includes("--database-url"), "no credentials in the args");
    assert.deepEqual(pdb.spec.selector.matchLabels, deployment.spec.selector.matchLabels);
    assert.equal(hpa.spec.scaleTargetRef.name, deployment.metadata.name);
    assert.equal(hpa.spec.metrics[0].resource.name, "cpu");
    assert.equal(service.spec.clusterIP, "None", "headless, so clients see every replica");
    const container = deployment.spec.template.spec.containers[0];
    assert.equal(container.readinessProbe.httpGet.path, "/v2/health/ready");
    assert.equal(container.livenessProbe.httpGet.path, "/v2/health/live");
    assert.ok(container.args.includes("--max-connection-age-ms"));
    assert.equal(deployment.spec.template.metadata.annotations["prometheus.io/path"], "/metrics");
    await cliAccepts(container.args);
  });

  it("KServe: a ServingRuntime for ONNX over v2 and grpc-v2, and an InferenceService that uses it", async () => {
    const [runtime] = await load("deploy/kserve/serving-runtime.yaml");
    const [isvc] = await load("deploy/kserve/inference-service.yaml");
    assert.equal(runtime.apiVersion, "serving.kserve.io/v1alpha1");
    assert.equal(runtime.kind, "ServingRuntime");
    assert.deepEqual(runtime.spec.supportedModelFormats.map((f: { name: string }) => f.name), ["onnx"]);
    assert.deepEqual(runtime.spec.protocolVersions, ["v2", "grpc-v2"]);
    const [container] = runtime.spec.containers;
    assert.equal(container.name, "kserve-container");
    assert.equal(container.args[container.args.indexOf("--models") + 1], "/mnt/models");
    assert.ok(runtime.metadata.annotations["prometheus.kserve.io/port"]);
    // Its containers must be valid Kubernetes containers.
    new Pod({ metadata: { name: "runtime" }, spec: { containers: runtime.spec.containers } }).validate();
    await cliAccepts(container.args);
    assert.equal(isvc.apiVersion, "serving.kserve.io/v1beta1");
    assert.equal(isvc.kind, "InferenceService");
    assert.equal(isvc.spec.predictor.model.runtime, runtime.metadata.name);
    assert.equal(isvc.spec.predictor.model.modelFormat.name, "onnx");
    assert.equal(isvc.spec.predictor.model.protocolVersion, "grpc-v2");
  });

  it("Dockerfile: multi-stage, non-root, production install, health check, the CUDA switch", async () => {
    const dockerfile = await readFile(new URL("../deploy/Dockerfile", import.meta.url), "utf8");
    assert.equal((dockerfile.match(/^FROM /gm) ?? []).length, 2);
    assert.match(dockerfile, /npm ci && npm prune --omit=dev/);
    assert.match(dockerfile, /^USER node$/m);
    assert.match(dockerfile, /^HEALTHCHECK .*\n.*\/v2\/health\/ready/m);
    assert.match(dockerfile, /ONNXRUNTIME_NODE_INSTALL=cuda12/);
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]) as string[];
    await cliAccepts(cmd);
  });
});

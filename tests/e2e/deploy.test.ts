/**
 * The deploy scenarios under the real engine: `pulumi preview`/`pulumi up` on a copy of this
 * project, a real registry, a local Kubernetes API (kwok nodes), and the real command and
 * kubernetes plugins. Each scenario asserts the engine's own step set (`preview --json` steps and
 * `up --event-log` events) and what the registry and the cluster hold afterwards.
 *
 * The scenarios run in order on one world: each starts from the state the previous one left.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { changeSet, stepsOfEvents, urnName, type EngineEvent } from "../helpers/pulumi";
import { engineToolsOrSkip } from "../helpers/pulumi";
import {
    deploymentImages,
    E2E_SECRETS,
    E2E_TOOLS,
    editApp,
    ensureRuns,
    initStack,
    kubectlJson,
    readStackConfig,
    registryHas,
    registryTags,
    registryWrites,
    startWorld,
    writeStackConfig,
    type World,
} from "../helpers/e2e-world";

const UAT = "e2e-uat";
const PROD = "e2e-prod";
const WORKLOADS = ["app-web", "app-worker-celery"];

let world: World | undefined;

/** Runs `pulumi up` and fails with the engine's output when it does not succeed. */
async function up(stack: string): Promise<EngineEvent[]> {
    const { result, events } = await w().project.up(stack);
    assert.equal(result.code, 0, `pulumi up --stack ${stack} failed:\n${result.stdout.slice(-6000)}\n${result.stderr.slice(-3000)}`);
    return events;
}

async function preview(stack: string, extra: string[] = []): Promise<string[]> {
    const p = await w().project.preview(stack, extra);
    assert.equal(
        p.result.code,
        0,
        `pulumi preview failed:\n${p.diagnostics.map((d) => `${d.severity}: ${d.message}`).join("\n")}\n${p.result.stderr.slice(-3000)}`,
    );
    return changeSet(p.steps);
}

function w(): World {
    assert.ok(world, "the e2e world did not start");
    return world;
}

/** Engine event index of the first event about a resource with the given op(s). */
function firstEvent(events: EngineEvent[], kind: "pre" | "out", name: (n: string) => boolean, ops: string[]): number {
    return events.findIndex((e) => {
        const m = kind === "pre" ? e.resourcePreEvent?.metadata : e.resOutputsEvent?.metadata;
        return m !== undefined && ops.includes(m.op) && name(urnName(m.urn));
    });
}

function lastEvent(events: EngineEvent[], kind: "pre" | "out", name: (n: string) => boolean, ops: string[]): number {
    let found = -1;
    events.forEach((e, i) => {
        const m = kind === "pre" ? e.resourcePreEvent?.metadata : e.resOutputsEvent?.metadata;
        if (m !== undefined && ops.includes(m.op) && name(urnName(m.urn))) found = i;
    });
    return found;
}

const isJob = (n: string) => n.startsWith("app-migrate-");
const isWorkload = (n: string) => WORKLOADS.includes(n);

/** Every workload image of the stack is a digest ref the registry holds. */
async function assertImagesInRegistry(namespace: string): Promise<string> {
    const images = deploymentImages(w(), namespace);
    assert.deepEqual(Object.keys(images).sort(), WORKLOADS);
    const all = new Set(Object.values(images).flat());
    assert.equal(all.size, 1, `every workload runs the one app image: ${JSON.stringify(images)}`);
    const [ref] = [...all];
    assert.match(ref, /@sha256:[a-f0-9]{64}$/, "workloads run a digest, never a tag");
    assert.ok(await registryHas(ref), `the registry has ${ref}`);
    return ref;
}

function jobs(namespace: string): { name: string; complete: boolean; failed: boolean }[] {
    const list = kubectlJson<{ items: { metadata: { name: string }; status: { conditions?: { type: string; status: string }[] } }[] }>(w(), [
        "-n",
        namespace,
        "get",
        "jobs",
    ]);
    return list.items.map((j) => ({
        name: j.metadata.name,
        complete: (j.status.conditions ?? []).some((c) => c.type === "Complete" && c.status === "True"),
        failed: (j.status.conditions ?? []).some((c) => c.type === "Failed" && c.status === "True"),
    }));
}

function outputsOf(stack: string): Record<string, unknown> {
    const r = spawnSync(w().project.bin, ["stack", "output", "--stack", stack, "--json", "--non-interactive"], {
        cwd: w().dir,
        env: w().project.env,
        encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, unknown>;
}

function addMigration(name: string, body: string): void {
    fs.writeFileSync(path.join(w().appDir, "records", "migrations", `${name}.py`), body);
}

const tools = engineToolsOrSkip(...E2E_TOOLS);

describe("deploy scenarios under the real Pulumi engine", { concurrency: false, skip: "skip" in tools ? tools.skip : false }, () => {
    before(async () => {
        world = await startWorld();
        await initStack(world, UAT);
    });
    after(async () => {
        await world?.stop();
    });

    it("first pulumi up: base built once, app daemonless, the Job completes before any Deployment, digests in the registry", async () => {
        const steps = await preview(UAT);
        assert.ok(steps.includes("create base-ensure") && steps.includes("create app-ensure"), steps.join("\n"));
        const events = await up(UAT);
        const runs = ensureRuns(events);
        assert.deepEqual([...runs.keys()].sort(), ["app-ensure", "base-ensure"]);
        assert.equal(runs.get("base-ensure")?.action, "built");
        assert.equal(runs.get("app-ensure")?.action, "built");
        assert.equal(runs.get("app-ensure")?.how, "daemonless");
        const jobDone = lastEvent(events, "out", isJob, ["create"]);
        const firstDeploy = firstEvent(events, "pre", isWorkload, ["create", "update"]);
        assert.ok(
            jobDone >= 0 && firstDeploy > jobDone,
            `the migration Job completes (event ${jobDone}) before any Deployment is touched (event ${firstDeploy})`,
        );
        const js = jobs(UAT);
        assert.equal(js.length, 1);
        assert.ok(js[0].complete, `the Job completed: ${JSON.stringify(js)}`);
        await assertImagesInRegistry(UAT);
        assert.equal((await registryTags(w(), "thinlayer/base")).filter((tg) => tg.startsWith("deps-")).length, 1, "one base tag");
    });

    it("no change: preview --expect-no-changes passes, and up runs no ensure and writes nothing to the registry", async () => {
        const p = await w().project.preview(UAT, ["--expect-no-changes"]);
        assert.equal(p.result.code, 0, `expected no changes:\n${p.result.stdout.slice(-3000)}`);
        const writes = registryWrites(w()).length;
        const events = await up(UAT);
        assert.deepEqual(changeSet(stepsOfEvents(events)), []);
        assert.equal(ensureRuns(events).size, 0, "no ensure command ran");
        assert.equal(registryWrites(w()).length, writes, "no registry write");
    });

    it("app-code edit: only the app image and the Deployments change", async () => {
        const before = await assertImagesInRegistry(UAT);
        editApp(w(), "records/views.py", "# e2e: an app-only edit");
        const expected = ["replace app-ensure", "update app-web", "update app-worker-celery"];
        assert.deepEqual(await preview(UAT), expected);
        const events = await up(UAT);
        assert.deepEqual(changeSet(stepsOfEvents(events)), expected);
        const runs = ensureRuns(events);
        assert.deepEqual([...runs.keys()], ["app-ensure"]);
        assert.equal(runs.get("app-ensure")?.how, "daemonless");
        const afterRef = await assertImagesInRegistry(UAT);
        assert.notEqual(afterRef, before);
    });

    it("settings change: a new ConfigMap and a rollout; the old ConfigMap goes after", async () => {
        const cfg = readStackConfig(w(), UAT);
        const settings = [...(cfg["thinlayer:settings"] as string[]).filter((s) => !s.startsWith("DJANGO_LOG_LEVEL=")), "DJANGO_LOG_LEVEL=DEBUG"];
        writeStackConfig(w(), UAT, { "thinlayer:settings": settings });
        const expected = ["replace app-settings", "update app-web", "update app-worker-celery"];
        assert.deepEqual(await preview(UAT), expected);
        const events = await up(UAT);
        assert.deepEqual(changeSet(stepsOfEvents(events)), expected);
        const created = firstEvent(events, "out", (n) => n === "app-settings", ["create-replacement"]);
        const rolled = lastEvent(events, "out", isWorkload, ["update"]);
        const deleted = firstEvent(events, "out", (n) => n === "app-settings", ["delete-replaced"]);
        assert.ok(
            created >= 0 && rolled > created && deleted > rolled,
            `new ConfigMap (${created}) < rollout (${rolled}) < old ConfigMap deleted (${deleted})`,
        );
        const cms = kubectlJson<{ items: { metadata: { name: string } }[] }>(w(), [
            "-n",
            UAT,
            "get",
            "configmaps",
            "-l",
            "app.kubernetes.io/component=settings",
        ]);
        assert.equal(cms.items.length, 1, "only the new settings ConfigMap is left");
    });

    it("new migration: a new Job runs and completes before the Deployments change; the old Job goes after", async () => {
        const oldJob = jobs(UAT)[0].name;
        addMigration(
            "0002_record_note",
            [
                "from django.db import migrations, models",
                "",
                "",
                "class Migration(migrations.Migration):",
                '    dependencies = [("records", "0001_initial")]',
                '    operations = [migrations.AddField(model_name="patient", name="note", field=models.TextField(null=True, blank=True))]',
                "",
            ].join("\n"),
        );
        const steps = await preview(UAT);
        const newJob = steps.find((s) => s.startsWith("create app-migrate-"))?.slice("create ".length);
        assert.ok(newJob && newJob !== oldJob, steps.join("\n"));
        assert.deepEqual(steps, [`create ${newJob}`, `delete ${oldJob}`, "replace app-ensure", "update app-web", "update app-worker-celery"].sort());
        const events = await up(UAT);
        assert.deepEqual(changeSet(stepsOfEvents(events)), steps);
        const jobDone = lastEvent(events, "out", (n) => n === newJob, ["create"]);
        const firstDeploy = firstEvent(events, "pre", isWorkload, ["update"]);
        const oldGone = firstEvent(events, "out", (n) => n === oldJob, ["delete"]);
        assert.ok(jobDone >= 0 && firstDeploy > jobDone && oldGone > firstDeploy, `job (${jobDone}) < rollout (${firstDeploy}) < old job deleted (${oldGone})`);
        assert.deepEqual(
            jobs(UAT).map((j) => j.name),
            [newJob],
        );
    });

    it("requirements edit: base, app and Deployments change; the Job does not", async () => {
        editApp(w(), "requirements/base.txt", "# e2e: a requirements edit");
        const expected = ["replace app-ensure", "replace base-ensure", "update app-web", "update app-worker-celery"];
        assert.deepEqual(await preview(UAT), expected);
        const events = await up(UAT);
        assert.deepEqual(changeSet(stepsOfEvents(events)), expected);
        const runs = ensureRuns(events);
        assert.equal(runs.get("base-ensure")?.action, "built");
        assert.equal(runs.get("app-ensure")?.action, "built");
        await assertImagesInRegistry(UAT);
    });

    it("second stack on the same registry: zero builds, the same digests", async () => {
        await initStack(w(), PROD);
        const uat = outputsOf(UAT);
        const writesBefore = registryWrites(w()).length;
        const events = await up(PROD);
        const runs = ensureRuns(events);
        assert.deepEqual([...runs.keys()].sort(), ["app-ensure", "base-ensure"]);
        for (const [name, r] of runs) assert.equal(r.action, "reused", `${name} reused, not built`);
        // The only writes: prod's keep tags (a manifest PUT of an existing digest each), no blob.
        const writes = registryWrites(w()).slice(writesBefore);
        assert.equal(writes.length, 2, writes.join("\n"));
        for (const l of writes) assert.match(l, /"PUT \/v2\/thinlayer\/(base|app)\/manifests\/e2e-prod-(deps|app)-[a-f0-9]{12} /, l);
        const prod = outputsOf(PROD);
        assert.equal(prod.appImageRef, uat.appImageRef);
        assert.equal(prod.baseImageRef, uat.baseImageRef);
        assert.equal(await assertImagesInRegistry(PROD), uat.appImageRef);
    });

    it("secrets: neither the exported state nor the outputs hold a secret setting in plain text", async () => {
        const exported = await w().project.ok(["stack", "export", "--stack", UAT]);
        const outputs = await w().project.ok(["stack", "output", "--stack", UAT, "--json", "--show-secrets"]);
        const kubeconfig = fs.readFileSync(w().cluster.kubeconfigPath, "utf8");
        const keyLine = /client-key-data: (\S+)/.exec(kubeconfig)?.[1];
        for (const [name, value] of Object.entries(E2E_SECRETS)) {
            assert.ok(!exported.stdout.includes(value), `${name} is not in the exported state`);
            assert.ok(!outputs.stdout.includes(value), `${name} is not in the outputs`);
            assert.ok(!exported.stdout.includes(Buffer.from(value).toString("base64")), `${name} is not in the state base64-encoded`);
        }
        if (keyLine) assert.ok(!exported.stdout.includes(keyLine), "the kubeconfig's client key is not in the state");
        assert.ok(exported.stdout.includes("ciphertext"), "secrets are in the state, encrypted");
    });

    it("rollback: thinlayer rollback on this backend's history, then up: no build resource, the earlier digest, nothing built; --clear returns", async () => {
        const current = outputsOf(UAT).appImageRef as string;
        const rb = spawnSync("node", ["bin/thinlayer.js", "rollback", "--stack", UAT, "--steps", "1"], {
            cwd: w().dir,
            env: w().project.env,
            encoding: "utf8",
        });
        assert.equal(rb.status, 0, `thinlayer rollback: ${rb.stdout}\n${rb.stderr}`);
        const pin = readStackConfig(w(), UAT)["thinlayer:releaseImage"] as string;
        assert.match(pin, /@sha256:[a-f0-9]{64}$/);
        assert.notEqual(pin, current);
        const writes = registryWrites(w()).length;
        const steps = await preview(UAT);
        assert.ok(steps.includes("delete app-ensure") && steps.includes("delete base-ensure"), steps.join("\n"));
        const events = await up(UAT);
        assert.equal(ensureRuns(events).size, 0, "nothing built or ensured");
        assert.equal(registryWrites(w()).length, writes, "no registry write");
        assert.equal(await assertImagesInRegistry(UAT), pin);
        assert.ok(!changeSet(stepsOfEvents(events)).some((s) => /app-migrate-.*create/.test(s)), "no migration Job runs for the pin");

        const clear = spawnSync("node", ["bin/thinlayer.js", "rollback", "--stack", UAT, "--clear"], { cwd: w().dir, env: w().project.env, encoding: "utf8" });
        assert.equal(clear.status, 0, clear.stderr);
        assert.equal(readStackConfig(w(), UAT)["thinlayer:releaseImage"], undefined);
        const back = await up(UAT);
        for (const [name, r] of ensureRuns(back)) assert.equal(r.action, "reused", `${name}: the images of the checkout exist, nothing is built`);
        assert.equal(await assertImagesInRegistry(UAT), current);
    });

    it("a contract migration (RemoveField) fails pulumi preview with the gate's error; acknowledged in config, it passes", async () => {
        const fixture = path.join(__dirname, "..", "fixtures", "migrations", "example-remove-field", "records", "migrations", "0002_remove_encounter_notes.py");
        const body = fs.readFileSync(fixture, "utf8").replace("('records', '0001_initial')", "('records', '0002_record_note')");
        addMigration("0003_remove_encounter_notes", body);
        try {
            const p = await w().project.preview(UAT);
            assert.notEqual(p.result.code, 0, "the preview fails");
            const errors = p.diagnostics
                .filter((d) => d.severity === "error")
                .map((d) => d.message)
                .join("\n");
            assert.match(errors, /records\.0003_remove_encounter_notes/, errors);
            assert.match(errors, /RemoveField/, errors);
            assert.match(errors, /acknowledgedMigrations/, errors);
            writeStackConfig(w(), UAT, { "thinlayer:acknowledgedMigrations": ["records.0003_remove_encounter_notes"] });
            const steps = await preview(UAT);
            assert.ok(
                steps.some((s) => s.startsWith("create app-migrate-")),
                steps.join("\n"),
            );
        } finally {
            fs.rmSync(path.join(w().appDir, "records", "migrations", "0003_remove_encounter_notes.py"));
            writeStackConfig(w(), UAT, { "thinlayer:acknowledgedMigrations": undefined });
        }
        assert.deepEqual(await preview(UAT), [], "back to the deployed checkout: nothing to do");
    });

    it("a migration that fails: the update stops, and the Deployments keep the previous image", async () => {
        const beforeRef = await assertImagesInRegistry(UAT);
        addMigration(
            "0003_fails",
            [
                "from django.db import migrations",
                "",
                "",
                "class Migration(migrations.Migration):",
                '    dependencies = [("records", "0002_record_note")]',
                '    operations = [migrations.RunSQL("SELECT 1/0")]',
                "",
            ].join("\n"),
        );
        // RunSQL is "unknown" to the migration gate: acknowledged, as a reviewed migration would be.
        writeStackConfig(w(), UAT, { "thinlayer:acknowledgedMigrations": ["records.0003_fails"] });
        const steps = await preview(UAT);
        const failingJob = steps.find((s) => s.startsWith("create app-migrate-"))?.slice("create ".length);
        assert.ok(failingJob, steps.join("\n"));
        const stage = await w().cluster.failPodsOfJob(failingJob);
        try {
            const { result, events } = await w().project.up(UAT);
            assert.notEqual(result.code, 0, "the update fails");
            assert.ok(
                events.some(
                    (e) =>
                        e.resOpFailedEvent !== undefined || (e.diagnosticEvent?.severity === "error" && (e.diagnosticEvent.urn ?? "").includes("app-migrate-")),
                ),
                "the Job is what failed",
            );
            assert.equal(firstEvent(events, "pre", isWorkload, ["update", "create", "replace"]), -1, "no Deployment was touched");
            assert.equal(await assertImagesInRegistry(UAT), beforeRef, "the Deployments keep the previous image");
        } finally {
            await stage.remove();
            fs.rmSync(path.join(w().appDir, "records", "migrations", "0003_fails.py"));
            writeStackConfig(w(), UAT, { "thinlayer:acknowledgedMigrations": undefined });
        }
        const events = await up(UAT);
        assert.equal(await assertImagesInRegistry(UAT), beforeRef, "back to the last good checkout, same image");
        assert.ok(
            !changeSet(stepsOfEvents(events)).some((s) => s.startsWith("replace app-ensure") || s.startsWith("create app-ensure")) ||
                ensureRuns(events).get("app-ensure")?.action === "reused",
        );
    });

    it("pulumi up killed during the app build: the next up completes, no duplicate image, the stack never points at a missing image", async () => {
        editApp(w(), "records/views.py", "# e2e: the edit whose build is killed");
        let pid = 0;
        const running = w().project.up(UAT, [], { onSpawn: (p) => (pid = p) });
        // Wait until this project's app ensure is running (its process is visible, working in this
        // project's directory: test files running beside this one run ensures of their own), then
        // kill the engine.
        const projectDir = fs.realpathSync(w().project.dir);
        const ourEnsure = (pid: string): boolean => {
            try {
                return fs.realpathSync(`/proc/${pid}/cwd`) === projectDir;
            } catch {
                return false; // gone meanwhile
            }
        };
        const until = Date.now() + 120_000;
        let sawEnsure = false;
        while (Date.now() < until && !sawEnsure) {
            const ps = spawnSync("pgrep", ["-f", "thinlayer.js ensure app"], { encoding: "utf8" });
            sawEnsure = ps.status === 0 && ps.stdout.split("\n").some((pid) => pid.trim() !== "" && ourEnsure(pid.trim()));
            if (!sawEnsure) await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(sawEnsure, "the app ensure started");
        process.kill(pid, "SIGKILL");
        await running;
        // Whatever the killed ensure did, the stack still points at an image that exists.
        const mid = outputsOf(UAT).appImageRef as string;
        assert.ok(await registryHas(mid), `after the kill the stack points at ${mid}, which exists`);
        // A killed CLI leaves its lock behind; Pulumi's own fix, as its error says, is
        // `pulumi cancel`. Then the next up completes.
        const locked = await w().project.up(UAT);
        assert.notEqual(locked.result.code, 0);
        assert.match(locked.result.stdout + locked.result.stderr, /locked/);
        await w().project.ok(["cancel", "--stack", UAT, "--yes"]);
        const events = await up(UAT);
        const run = ensureRuns(events).get("app-ensure");
        assert.ok(run, "the app ensure ran again");
        const ref = await assertImagesInRegistry(UAT);
        assert.equal(ref, run.ref);
        const tag = `app-${(outputsOf(UAT).appHash as string).slice(0, 12)}`;
        const tags = await registryTags(w(), "thinlayer/app");
        assert.equal(tags.filter((x) => x === tag).length, 1, "one tag for the image, no duplicate");
    });
});

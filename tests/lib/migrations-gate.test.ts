/**
 * The migration gate: the migrations a deploy would apply (checkout minus the stack's outputs or a
 * git ref), the error that stops a contract or unknown one, and the acknowledgement that lets it
 * through. On a copy of the example app with the makemigrations RemoveField fixture added.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { loadProjectSchema, parseStackConfig, type StackConfig } from "../../lib/config";
import { computeMigrations } from "../../lib/plan";
import {
    appliedMigrations,
    baselineFromGit,
    baselineFromOutputs,
    checkDeployMigrations,
    classifyMigrations,
    idOfPath,
    migrationGateError,
    migrationNotes,
    migrationSafety,
    pendingOf,
    planMigrationSafety,
    type ClassifiedMigration,
} from "../../lib/migrations";
import { copyDir, tempDir } from "./inputs.fixtures";

const REPO = path.resolve(__dirname, "../..");
const REMOVE_FIELD = path.join(REPO, "tests/fixtures/migrations/example-remove-field/records/migrations/0002_remove_encounter_notes.py");
const REMOVE_ID = "records.0002_remove_encounter_notes";

/** A copy of the example app, optionally with the RemoveField migration added (as a developer would after makemigrations). */
function exampleApp(withRemoveField: boolean): string {
    const dir = path.join(tempDir("thinlayer-migrations-"), "app");
    copyDir(path.join(REPO, "examples/django-app"), dir);
    if (withRemoveField) fs.copyFileSync(REMOVE_FIELD, path.join(dir, "records/migrations/0002_remove_encounter_notes.py"));
    return dir;
}

function config(appDir: string, raw: Record<string, unknown> = {}): StackConfig {
    return parseStackConfig({ appDir, ...raw }, loadProjectSchema(REPO), { projectDir: REPO, stack: "uat" });
}

async function checkout(appDir: string) {
    const cfg = config(appDir);
    const files = await computeMigrations(appDir, cfg.migrationGlobs, { cache: false });
    return {
        files,
        classified: await classifyMigrations(
            appDir,
            files.files.map((f) => f.path),
        ),
    };
}

function fakeMigration(id: string, cls: ClassifiedMigration["class"], replaces: Array<[string, string]> = []): ClassifiedMigration {
    const [app, name] = id.split(".");
    return { app, name, id, path: `${app}/migrations/${name}.py`, dependencies: [], replaces, initial: false, class: cls, operations: [] };
}

void test("the deployed release's outputs decide what is new; no outputs is a first deploy", () => {
    const ms = [fakeMigration("a.0001_initial", "expand"), fakeMigration("a.0002_x", "contract")];
    const checkoutInfo = { hash: "h1", migrations: ms };
    assert.deepEqual(baselineFromOutputs({ appHash: "x", migrations: ["a.0001_initial"] }, checkoutInfo, "s"), {
        kind: "deployed",
        source: "s",
        ids: ["a.0001_initial"],
    });
    assert.deepEqual(baselineFromOutputs({}, checkoutInfo, "s"), { kind: "fresh", source: "s" });
    assert.deepEqual(baselineFromOutputs(undefined, checkoutInfo, "s"), { kind: "fresh", source: "s" });
    // A release deployed before the `migrations` output: the same hash proves nothing is new.
    assert.deepEqual(baselineFromOutputs({ appHash: "x", migrationsHash: "h1" }, checkoutInfo, "s"), {
        kind: "deployed",
        source: "s (same migrations hash)",
        ids: ["a.0001_initial", "a.0002_x"],
    });
    const unknown = baselineFromOutputs({ appHash: "x", migrationsHash: "h0" }, checkoutInfo, "s");
    assert.equal(unknown.kind, "unknown");
    assert.equal(baselineFromOutputs({ appHash: "x", migrations: ["not an id"] }, checkoutInfo, "s").kind, "unknown");
});

void test("pending: not applied, and a squash counts as applied when what it replaces is (and the reverse)", () => {
    const squash = fakeMigration("a.0001_squashed_0002", "expand", [
        ["a", "0001_initial"],
        ["a", "0002_x"],
    ]);
    const ms = [fakeMigration("a.0001_initial", "expand"), fakeMigration("a.0002_x", "contract"), squash, fakeMigration("a.0003_y", "expand")];
    const ids = (b: Parameters<typeof pendingOf>[1]) => pendingOf(ms, b).map((m) => m.id);
    assert.deepEqual(ids({ kind: "deployed", source: "", ids: ["a.0001_initial", "a.0002_x"] }), ["a.0003_y"]);
    assert.deepEqual(ids({ kind: "deployed", source: "", ids: ["a.0001_squashed_0002"] }), ["a.0003_y"]);
    assert.deepEqual(ids({ kind: "deployed", source: "", ids: ["a.0001_initial"] }), ["a.0002_x", "a.0001_squashed_0002", "a.0003_y"]);
    assert.deepEqual(
        ids({ kind: "fresh", source: "" }),
        ms.map((m) => m.id),
    );
});

void test("the gate blocks a contract migration with the migration, the operation, the fix and the acknowledgement", async () => {
    const app = exampleApp(true);
    const { classified } = await checkout(app);
    const safety = migrationSafety(classified, { kind: "deployed", source: "stack uat's deployed release", ids: ["records.0001_initial"] }, []);
    assert.deepEqual(
        safety.pending.map((m) => [m.id, m.class, m.blocked, m.acknowledged]),
        [[REMOVE_ID, "contract", true, false]],
    );
    const err = migrationGateError(safety, "uat");
    assert.ok(err);
    assert.equal(
        err.message,
        [
            "migration gate: 1 migration this deploy would apply breaks the release still serving (compared with stack uat's deployed release).",
            "",
            `${REMOVE_ID} (records/migrations/0002_remove_encounter_notes.py) is contract:`,
            "  - RemoveField encounter.notes (line 13): drops column encounter.notes: the serving release still selects it (Django names every column).",
            "    Fix: expand/contract: first deploy code that no longer uses the field and drops it from Django's state only (migrations.SeparateDatabaseAndState(state_operations=[RemoveField(...)]), with the column made null=True or given a db_default so the new code's inserts work); drop the column in a later deploy, once no release that reads it can serve or be rolled back to.",
            "",
            "Expected: expand migrations only (old and new pods share the database during the rollout, and a rollback runs the old code on the new schema), or the migration acknowledged for this stack.",
            "Fix: split each into expand and contract steps as above; or, once the release still serving no longer depends on what it changes (an earlier deploy did the expand step), acknowledge it in Pulumi.uat.yaml:",
            "    thinlayer:acknowledgedMigrations:",
            `      - ${REMOVE_ID}`,
        ].join("\n"),
    );

    const acked = migrationSafety(classified, safety.baseline, [REMOVE_ID, "records.0001_initial"]);
    assert.equal(migrationGateError(acked, "uat"), undefined);
    assert.deepEqual(
        acked.pending.map((m) => [m.id, m.blocked, m.acknowledged]),
        [[REMOVE_ID, false, true]],
    );
    assert.deepEqual(acked.staleAcknowledgements, ["records.0001_initial"]);
    assert.deepEqual(migrationNotes(acked, "uat"), [
        `migration ${REMOVE_ID} is contract (RemoveField encounter.notes); it runs because thinlayer:acknowledgedMigrations acknowledges it for stack uat`,
        "thinlayer:acknowledgedMigrations lists records.0001_initial, which this deploy does not apply (already applied, or no such migration): remove it from Pulumi.uat.yaml",
    ]);
});

void test("checkDeployMigrations: blocks from the stack's outputs, passes acknowledged, pinned, first and repeated deploys; outputs what is applied", async () => {
    const app = exampleApp(true);
    const { files } = await checkout(app);
    const before = { appHash: "a".repeat(64), migrationsHash: "b".repeat(64), migrations: ["records.0001_initial"] };
    await assert.rejects(
        checkDeployMigrations({ cfg: config(app), migrations: files, previous: before, pinned: false }),
        (e: Error) =>
            e.name === "ThinlayerError" &&
            e.message.includes(`${REMOVE_ID} (records/migrations/0002_remove_encounter_notes.py) is contract:`) &&
            e.message.includes("RemoveField encounter.notes (line 13)"),
    );
    const acked = await checkDeployMigrations({
        cfg: config(app, { acknowledgedMigrations: [REMOVE_ID] }),
        migrations: files,
        previous: before,
        pinned: false,
    });
    assert.deepEqual(acked.applied, ["records.0001_initial", REMOVE_ID]);
    assert.equal(acked.notes.length, 1);
    // After that deploy the outputs list both: nothing is new, the acknowledgement is stale.
    const again = await checkDeployMigrations({
        cfg: config(app, { acknowledgedMigrations: [REMOVE_ID] }),
        migrations: files,
        previous: { ...before, migrations: acked.applied },
        pinned: false,
    });
    assert.deepEqual(again.safety.pending, []);
    assert.deepEqual(again.safety.staleAcknowledgements, [REMOVE_ID]);
    // A rollback pin applies none of the checkout's migrations: never gated, applied set unchanged.
    const pinned = await checkDeployMigrations({ cfg: config(app), migrations: files, previous: before, pinned: true });
    assert.deepEqual(pinned.applied, ["records.0001_initial"]);
    // First deploy: nothing serves, so nothing is gated; a note says so.
    const first = await checkDeployMigrations({ cfg: config(app), migrations: files, previous: {}, pinned: false });
    assert.deepEqual(first.applied, ["records.0001_initial", REMOVE_ID]);
    assert.match(first.notes.join("\n"), /no release was deployed to stack uat yet/);
    // The unchanged example passes against a release that has its one migration.
    const plain = exampleApp(false);
    const ok = await checkDeployMigrations({ cfg: config(plain), migrations: (await checkout(plain)).files, previous: before, pinned: false });
    assert.deepEqual(ok.safety.pending, []);
});

void test("applied migrations only grow: a pin keeps them, a source deploy adds the checkout's", () => {
    const ms = [fakeMigration("a.0001_initial", "expand")];
    assert.deepEqual(appliedMigrations({ kind: "deployed", source: "", ids: ["a.0001_initial", "a.0002_gone"] }, false, ms), ["a.0001_initial", "a.0002_gone"]);
    assert.deepEqual(appliedMigrations({ kind: "deployed", source: "", ids: ["a.0002_gone"] }, true, ms), ["a.0002_gone"]);
    assert.equal(appliedMigrations({ kind: "unknown", source: "", reason: "" }, true, ms), undefined);
    assert.deepEqual(appliedMigrations({ kind: "fresh", source: "" }, false, ms), ["a.0001_initial"]);
});

void test("a pull request is compared with its target branch in git", async () => {
    const repo = tempDir("thinlayer-git-");
    const app = path.join(repo, "app");
    copyDir(path.join(REPO, "examples/django-app"), app);
    const git = (...args: string[]) =>
        execFileSync("git", args, {
            cwd: repo,
            encoding: "utf8",
            env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.com" },
        });
    git("init", "-q", "-b", "main");
    git("add", ".");
    git("commit", "-q", "-m", "app");
    git("checkout", "-q", "-b", "feature");
    fs.copyFileSync(REMOVE_FIELD, path.join(app, "records/migrations/0002_remove_encounter_notes.py"));
    git("add", ".");
    git("commit", "-q", "-m", "drop notes");

    const cfg = config(app);
    const { files, classified } = await checkout(app);
    assert.deepEqual(await baselineFromGit(app, "main", cfg.migrationGlobs, classified), {
        kind: "deployed",
        source: "git main",
        ids: ["records.0001_initial"],
    });
    const safety = await planMigrationSafety(cfg, files, { against: "main" });
    assert.deepEqual(
        safety.pending.map((m) => [m.id, m.class, m.blocked]),
        [[REMOVE_ID, "contract", true]],
    );
    assert.deepEqual((await planMigrationSafety(cfg, files, { against: "feature" })).pending, []);
    await assert.rejects(baselineFromGit(app, "no-such-branch", cfg.migrationGlobs, classified), (e: Error) => {
        assert.equal(
            e.message,
            '--against: got "no-such-branch"; expected a commit, branch or tag of the repository holding appDir. Fix: fetch the target branch first (git fetch origin main) and pass e.g. --against origin/main',
        );
        return true;
    });
    // Without a baseline every migration is listed, and the contract one would block.
    const none = await planMigrationSafety(cfg, files, { none: true });
    assert.deepEqual(
        none.pending.map((m) => m.id),
        ["records.0001_initial", REMOVE_ID],
    );
});

void test("ids from paths follow Django's loader", () => {
    assert.equal(idOfPath("records/migrations/0002_x.py"), "records.0002_x");
    assert.equal(idOfPath("apps/billing/migrations/0001_initial.py"), "billing.0001_initial");
    assert.equal(idOfPath("records/migrations/__init__.py"), undefined);
    assert.equal(idOfPath("records/migrations/~0002_x.py"), undefined);
    assert.equal(idOfPath("migrations/0001_initial.py"), undefined);
    assert.equal(idOfPath("records/db_migrations/0001_initial.py"), "records.0001_initial", "a MIGRATION_MODULES package the globs match");
});

void test("thinlayer:acknowledgedMigrations: ids are checked by the config parser", () => {
    const app = exampleApp(false);
    assert.deepEqual(config(app).acknowledgedMigrations, []);
    assert.deepEqual(config(app, { acknowledgedMigrations: [REMOVE_ID, REMOVE_ID] }).acknowledgedMigrations, [REMOVE_ID]);
    assert.throws(
        () => config(app, { acknowledgedMigrations: ["0002_remove_encounter_notes"] }),
        (e: Error) => {
            assert.equal(
                e.message,
                'thinlayer:acknowledgedMigrations: got "0002_remove_encounter_notes"; expected migration ids <app label>.<migration name>, e.g. records.0002_remove_encounter_notes (as `thinlayer plan` and the gate print them). Fix: write each entry as <app>.<file name without .py>',
            );
            return true;
        },
    );
});

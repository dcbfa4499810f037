/**
 * The rollback guard, through the real `thinlayer rollback` entry point on recorded history
 * (tests/fixtures/history/uat) whose exports carry the program's `migrations` output: the current
 * release applied the makemigrations RemoveField that the target release predates.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import * as YAML from "yaml";
import { rollbackMigrationProblems, type ClassifiedMigration } from "../../lib/migrations";
import { copyDir, tempDir } from "../lib/inputs.fixtures";

const REPO = path.resolve(__dirname, "../..");
const HISTORY = path.join(REPO, "tests/fixtures/history/uat");
const REMOVE_ID = "records.0002_remove_encounter_notes";
const FIXTURE = path.join(REPO, "tests/fixtures/migrations/example-remove-field/records/migrations/0002_remove_encounter_notes.py");
const NULLABLE = `from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    dependencies = [("records", "0001_initial")]\n    operations = [\n        migrations.AddField(model_name="encounter", name="ward", field=models.CharField(max_length=20, null=True)),\n    ]\n`;

/**
 * A project whose app has `second` as its 0002 migration, and the uat history with `migrations`
 * outputs: releases a and b (updates 1-4) had 0001 only, release c (update 6, current) applied `second`.
 */
function world(second: { name: string; text: string } | undefined, withOutputs = true): { dir: string; exports: string; stackFile: string } {
    const dir = tempDir("thinlayer-rollback-migrations-");
    fs.copyFileSync(path.join(REPO, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    const stackFile = path.join(dir, "Pulumi.uat.yaml");
    fs.writeFileSync(stackFile, fs.readFileSync(path.join(REPO, "Pulumi.uat.yaml"), "utf8").replace("config:\n", "config:\n  thinlayer:appDir: app\n"));
    copyDir(path.join(REPO, "examples/django-app"), path.join(dir, "app"));
    const ids = ["records.0001_initial"];
    if (second) {
        fs.writeFileSync(path.join(dir, "app/records/migrations", `${second.name}.py`), second.text);
        ids.push(`records.${second.name}`);
    }
    const exports = path.join(dir, "exports");
    fs.mkdirSync(exports);
    for (const f of fs.readdirSync(path.join(HISTORY, "exports"))) {
        const doc = JSON.parse(fs.readFileSync(path.join(HISTORY, "exports", f), "utf8")) as {
            deployment: { resources: Array<{ type: string; outputs?: Record<string, unknown> }> };
        };
        const stack = doc.deployment.resources.find((r) => r.type === "pulumi:pulumi:Stack")!;
        const current = f === "6.json";
        if (withOutputs) stack.outputs!.migrations = current ? ids : ["records.0001_initial"];
        stack.outputs!.migrationsHash = (current ? "c" : "a").repeat(64);
        fs.writeFileSync(path.join(exports, f), JSON.stringify(doc));
    }
    return { dir, exports, stackFile };
}

function rollback(w: { dir: string; exports: string }, ...args: string[]) {
    return spawnSync(
        process.execPath,
        [
            path.join(REPO, "bin/thinlayer.js"),
            "rollback",
            "--stack",
            "uat",
            "--project",
            w.dir,
            "--history-file",
            path.join(HISTORY, "history.json"),
            "--exports-dir",
            w.exports,
            ...args,
        ],
        { encoding: "utf8", cwd: REPO, timeout: 60_000 },
    );
}

void test("rollback refuses to pin a release older than an applied contract migration, naming it; --force pins", () => {
    const w = world({ name: "0002_remove_encounter_notes", text: fs.readFileSync(FIXTURE, "utf8") });
    const before = fs.readFileSync(w.stackFile, "utf8");
    const r = rollback(w, "--steps", "1");
    assert.equal(r.status, 1, r.stdout);
    assert.equal(
        r.stderr,
        [
            "thinlayer: refusing to pin rel-8104fc88ad3f (update 4): the stack's database has 1 contract migration applied after that release, and a rollback reverses none:",
            `  - ${REMOVE_ID} (records/migrations/0002_remove_encounter_notes.py)`,
            "      RemoveField encounter.notes: drops column encounter.notes: the serving release still selects it (Django names every column)",
            "The older code would meet a schema it does not know (a column it selects is gone, a column it does not write is NOT NULL) and fail.",
            `Fix: roll forward instead (revert the change in git and \`pulumi up --stack uat\`); or roll back to a release deployed after ${REMOVE_ID} (thinlayer rollback --stack uat --list); or, if you reversed the migration yourself (python manage.py migrate <app> <previous>) or know the older code does not touch what it changed, rerun with --force.`,
            "",
        ].join("\n"),
    );
    assert.equal(fs.readFileSync(w.stackFile, "utf8"), before, "nothing written");

    const forced = rollback(w, "--steps", "1", "--force");
    assert.equal(forced.status, 0, forced.stderr);
    assert.match(forced.stdout, new RegExp(`--force: pinned across contract migration ${REMOVE_ID.replace(".", "\\.")} \\(RemoveField encounter\\.notes\\)`));
    const cfg = (YAML.parse(fs.readFileSync(w.stackFile, "utf8")) as { config: Record<string, unknown> }).config;
    assert.match(String(cfg["thinlayer:releaseImage"]), /@sha256:c81731cd/);
});

void test("an expand migration applied since does not stop a rollback; unrecorded migrations are a note", () => {
    const expand = rollback(world({ name: "0002_encounter_ward", text: NULLABLE }), "--steps", "1", "--dry-run");
    assert.equal(expand.status, 0, expand.stderr);
    assert.ok(!expand.stdout.includes("migrations: not checked"), expand.stdout);

    const old = rollback(world({ name: "0002_remove_encounter_notes", text: fs.readFileSync(FIXTURE, "utf8") }, false), "--steps", "1", "--dry-run");
    assert.equal(old.status, 0, old.stderr);
    assert.match(old.stdout, /migrations: not checked: the current release's outputs do not record its migrations/);
});

void test("the guard's verdict: contract blocks, unknown and migrations missing from the checkout are notes, same hash is nothing", () => {
    const m = (id: string, cls: ClassifiedMigration["class"]): ClassifiedMigration => ({
        app: "a",
        name: id.split(".")[1],
        id,
        path: `a/migrations/${id.split(".")[1]}.py`,
        dependencies: [],
        replaces: [],
        initial: false,
        class: cls,
        operations: [
            {
                index: "0",
                line: 3,
                operation: cls === "contract" ? "RemoveField" : "RunPython",
                summary: cls === "contract" ? "RemoveField t.f" : "RunPython fill",
                class: cls,
                reason: "r",
            },
        ],
    });
    const checkout = [m("a.0001_initial", "expand"), m("a.0002_drop", "contract"), m("a.0003_data", "unknown")];
    const current = { migrations: ["a.0001_initial", "a.0002_drop", "a.0003_data", "a.0004_gone"], migrationsHash: "x" };
    const got = rollbackMigrationProblems(current, { migrations: ["a.0001_initial"], migrationsHash: "y" }, checkout);
    assert.deepEqual(got.blocking, [{ id: "a.0002_drop", path: "a/migrations/0002_drop.py", operations: ["RemoveField t.f: r"] }]);
    assert.equal(got.notes.length, 2);
    assert.match(got.notes[0], /a\.0003_data \(RunPython fill\) was applied after the target release and cannot be classified/);
    assert.match(got.notes[1], /a\.0004_gone was applied after the target release and is not in this checkout/);
    assert.deepEqual(rollbackMigrationProblems(current, { migrations: [], migrationsHash: "x" }, checkout), { blocking: [], notes: [] });
});

/**
 * The migration-gate policies over the root Stack resource, whose props are the program's outputs
 * (the engine passes them to stack policies in preview and up): the `migrationGate` verdict
 * the program exports (migrationGateOutput), from a real classification of the example app with the
 * makemigrations RemoveField added.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { policies } from "../../policy/policies";
import { baselineFromOutputs, classifyMigrations, migrationGateOutput, migrationSafety } from "../../lib/migrations";
import { computeMigrations } from "../../lib/plan";
import { copyDir, tempDir } from "../lib/inputs.fixtures";
import { analyzeStack } from "./policy-harness";

const REPO = path.resolve(__dirname, "../..");
const REMOVE_ID = "records.0002_remove_encounter_notes";

/** The Stack resource as the engine shows it to a stack policy: the program's outputs, with the gate's verdict for `acknowledged`. */
async function stackResource(acknowledged: string[], previous: Record<string, unknown>, pinned = false) {
    const app = path.join(tempDir("thinlayer-policy-migrations-"), "app");
    copyDir(path.join(REPO, "examples/django-app"), app);
    fs.copyFileSync(
        path.join(REPO, "tests/fixtures/migrations/example-remove-field/records/migrations/0002_remove_encounter_notes.py"),
        path.join(app, "records/migrations/0002_remove_encounter_notes.py"),
    );
    const migrations = await computeMigrations(app, ["**/migrations/*.py"], { cache: false });
    const classified = await classifyMigrations(
        app,
        migrations.files.map((f) => f.path),
    );
    // The verdict as exported by a program whose own gate did not stop it (acknowledged, or a program that skips its gate).
    const safety = migrationSafety(
        classified,
        baselineFromOutputs(previous, { hash: migrations.hash, migrations: classified }, "stack uat's deployed release"),
        acknowledged,
    );
    return { type: "pulumi:pulumi:Stack", name: "thinlayer-uat", props: { appHash: "a".repeat(64), migrationGate: migrationGateOutput(safety, pinned) } };
}

const DEPLOYED = { appHash: "b".repeat(64), migrations: ["records.0001_initial"] };

void test("migration-gate fails a stack whose outputs apply an unacknowledged contract migration", async () => {
    const vs = await analyzeStack(policies, [await stackResource([], DEPLOYED)]);
    assert.deepEqual(
        vs.map((v) => [v.policy, v.enforcementLevel]),
        [["migration-gate", "mandatory"]],
    );
    assert.match(
        vs[0].message,
        /^migration records\.0002_remove_encounter_notes is contract \(RemoveField encounter\.notes\) and not acknowledged: the release still serving breaks while it runs\./,
    );
});

void test("migration-gate passes acknowledged migrations, rollback pins and first deploys", async () => {
    assert.deepEqual(await analyzeStack(policies, [await stackResource([REMOVE_ID], DEPLOYED)]), []);
    assert.deepEqual(await analyzeStack(policies, [await stackResource([], DEPLOYED, true)]), []);
    assert.deepEqual(await analyzeStack(policies, [await stackResource([], {})]), []);
});

void test("migration-gate-exported (advisory) flags a thinlayer stack without the verdict", async () => {
    const vs = await analyzeStack(policies, [{ type: "pulumi:pulumi:Stack", name: "thinlayer-uat", props: { appHash: "a".repeat(64) } }]);
    assert.deepEqual(
        vs.map((v) => [v.policy, v.enforcementLevel]),
        [["migration-gate-exported", "advisory"]],
    );
    assert.deepEqual(await analyzeStack(policies, [{ type: "pulumi:pulumi:Stack", name: "other", props: {} }]), []);
});

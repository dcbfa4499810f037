/**
 * The migration gate in the program (`pulumi preview` and `up`), under the mocked engine: the
 * example app with a RemoveField migration added fails preview with the gate's error while the
 * stack's deployed release (its own outputs, read back through a StackReference) lacks it; the
 * acknowledgement lets it through; the `migrations` output records what the database has.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { copyExampleApp, evaluateProgram, PROJECT_DIR } from "../helpers/diff";

const SECRETS = { secretSettings: ["DJANGO_SECRET_KEY=x"] };
const REMOVE_ID = "records.0002_remove_encounter_notes";
const FIXTURE = path.join(PROJECT_DIR, "tests/fixtures/migrations/example-remove-field/records/migrations/0002_remove_encounter_notes.py");

void test("preview fails with the gate's error for a RemoveField the deployed release lacks; acknowledged, it passes", { timeout: 120_000 }, async () => {
    const app = copyExampleApp();
    try {
        // Deploy 1 of the unchanged example: a first deploy, nothing gated; it records its migrations.
        const first = await evaluateProgram({ stack: "uat", config: { appDir: app.dir }, secrets: SECRETS });
        assert.deepEqual(first.outputs.migrations, ["records.0001_initial"]);
        const deployed = { appHash: first.outputs.appHash, migrationsHash: first.outputs.migrationsHash, migrations: first.outputs.migrations };

        fs.copyFileSync(FIXTURE, path.join(app.dir, "records/migrations/0002_remove_encounter_notes.py"));
        await assert.rejects(
            evaluateProgram({ stack: "uat", preview: true, config: { appDir: app.dir }, secrets: SECRETS, mocks: { stackOutputs: deployed } }),
            (e: Error) => {
                assert.match(
                    e.message,
                    /migration gate: 1 migration this deploy would apply breaks the release still serving \(compared with stack uat's deployed release\)/,
                );
                assert.match(e.message, new RegExp(`${REMOVE_ID.replace(".", "\\.")} \\(records/migrations/0002_remove_encounter_notes\\.py\\) is contract:`));
                assert.match(e.message, /RemoveField encounter\.notes \(line 13\): drops column encounter\.notes/);
                assert.match(e.message, /Fix: expand\/contract: /);
                assert.match(e.message, /thinlayer:acknowledgedMigrations:\n\s+- records\.0002_remove_encounter_notes/);
                return true;
            },
        );

        const acked = await evaluateProgram({
            stack: "uat",
            preview: true,
            config: { appDir: app.dir, acknowledgedMigrations: [REMOVE_ID] },
            secrets: SECRETS,
            mocks: { stackOutputs: deployed },
        });
        assert.deepEqual(acked.outputs.migrations, ["records.0001_initial", REMOVE_ID]);
        assert.deepEqual(acked.outputs.migrationGate, {
            version: 1,
            baseline: "deployed",
            pinned: false,
            pending: [{ id: REMOVE_ID, class: "contract", acknowledged: true, blocked: false, operations: ["RemoveField encounter.notes"] }],
        });
        assert.ok(
            acked.logs.some((l) =>
                l.startsWith(
                    `info: migration ${REMOVE_ID} is contract (RemoveField encounter.notes); it runs because thinlayer:acknowledgedMigrations acknowledges it`,
                ),
            ),
            acked.logs.join("\n"),
        );

        // The deploy after it: nothing new, the stale acknowledgement is pointed out; without it, it passes too.
        const after = { ...deployed, migrations: acked.outputs.migrations, migrationsHash: acked.outputs.migrationsHash };
        const next = await evaluateProgram({ stack: "uat", preview: true, config: { appDir: app.dir }, secrets: SECRETS, mocks: { stackOutputs: after } });
        assert.deepEqual(next.outputs.migrations, ["records.0001_initial", REMOVE_ID]);
    } finally {
        app.cleanup();
    }
});

void test("a rollback pin is never gated and keeps the recorded migrations", { timeout: 120_000 }, async () => {
    const app = copyExampleApp();
    try {
        fs.copyFileSync(FIXTURE, path.join(app.dir, "records/migrations/0002_remove_encounter_notes.py"));
        const ref = `123456789012.dkr.ecr.eu-west-1.amazonaws.com/thinlayer/app@sha256:${"1".repeat(64)}`;
        const pinned = await evaluateProgram({
            stack: "uat",
            preview: true,
            config: { appDir: app.dir, releaseImage: ref },
            secrets: SECRETS,
            mocks: { stackOutputs: { appHash: "a".repeat(64), migrations: ["records.0001_initial"] } },
        });
        assert.deepEqual(pinned.outputs.migrations, ["records.0001_initial"]);
    } finally {
        app.cleanup();
    }
});

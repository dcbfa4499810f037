/**
 * A pinned rollback, where Pulumi decides it: with the diff harness of tests/helpers/diff.ts (the whole program evaluated
 * under mocks, state A -> state B, inputs compared as Pulumi's diff does). The pin is written by the
 * real `thinlayer rollback` CLI from the recorded history fixtures into a temp copy of the stack
 * file, and the program is then evaluated with that file's values.
 *
 * Expected: the workloads change (image, and the ConfigMap when the release's settings differ);
 * no image build is created or changed; the migration Job is keyed on the pinned release's
 * migrations hash (unchanged when the release has the checkout's migrations). The build Commands leave the program: Pulumi deletes them
 * from the state, which runs nothing (they have no delete command); clearing the pin recreates them
 * and `thinlayer ensure` reuses the tags already in the registry.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { readStackFile } from "../../lib/config";
import { releaseFromOutputs } from "../../lib/release/rollback";
import { changeSet, copyExampleApp, diffEvaluations, evaluateProgram, PROJECT_DIR, type EvalResult } from "../helpers/diff";

const SECRETS = { secretSettings: ["DJANGO_SECRET_KEY=s3cret-a", "DATABASE_URL=postgres://emr:pw@db/emr"] };
const fixtures = path.join(PROJECT_DIR, "tests/fixtures/history");
const ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/thinlayer/app";
const REL_A = { id: "rel-57c2ef560654", ref: `${ECR}@sha256:41fd17569e642ebc00f881bcb3917c30f02f530753cb2744fa53ede0ef78b60b` }; // INFO logging, as uat's file
const REL_C = { id: "rel-6b33f2ca2b46", ref: `${ECR}@sha256:628f58b1128b510154aea8c0e219bf9332bb01cf45c021427574ce18684adf54` }; // DEBUG logging

const WORKLOADS = ["inputs-changed kubernetes:apps/v1:Deployment::app-web", "inputs-changed kubernetes:apps/v1:Deployment::app-worker-celery"];
const BUILDS_LEAVE = [
    "delete command:local:Command::app-ensure",
    "delete command:local:Command::base-ensure",
    "delete thinlayer:image:AppImage::app",
    "delete thinlayer:image:BaseImage::base",
];

/** Runs `thinlayer rollback --to <release>` (history of `scenario`) against a temp copy of the stack files; returns the pinned stack values. */
function pinWithCli(release: string, scenario = "uat"): Record<string, unknown> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-pin-"));
    try {
        for (const f of ["Pulumi.yaml", "Pulumi.uat.yaml", "Pulumi.prod.yaml"]) fs.copyFileSync(path.join(PROJECT_DIR, f), path.join(dir, f));
        const r = spawnSync(
            process.execPath,
            [
                path.join(PROJECT_DIR, "bin/thinlayer.js"),
                "rollback",
                "--project",
                dir,
                "--stack",
                "uat",
                "--to",
                release,
                "--history-file",
                path.join(fixtures, scenario, "history.json"),
                "--exports-dir",
                path.join(fixtures, scenario, "exports"),
            ],
            { encoding: "utf8", cwd: PROJECT_DIR },
        );
        assert.equal(r.status, 0, r.stderr);
        return readStackFile(dir, "uat");
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

const workload = (e: EvalResult, name: string) => e.resources.find((r) => r.type === "kubernetes:apps/v1:Deployment" && r.name === name)?.inputs as any; // eslint-disable-line @typescript-eslint/no-explicit-any

describe("pinned rollback through the diff harness", { concurrency: 2 }, () => {
    test("same settings: only the workloads change, and no image build is created or changed", async () => {
        const app = copyExampleApp();
        try {
            const pinned = pinWithCli(REL_A.id);
            assert.equal(pinned.releaseImage, REL_A.ref);
            const a = await evaluateProgram({ stack: "uat", config: { appDir: app.dir }, secrets: SECRETS });
            const b = await evaluateProgram({ stack: "uat", config: { ...pinned, appDir: app.dir }, secrets: SECRETS });
            const set = changeSet(diffEvaluations(a, b));
            // REL_A has the checkout's migrations: its Job is the one already there, untouched.
            assert.equal(pinned.releaseMigrationsHash, a.outputs.migrationsHash);
            assert.deepEqual(set, [...BUILDS_LEAVE, ...WORKLOADS].sort());
            assert.ok(!set.some((c) => /^(create|update) (command:|thinlayer:image:)/.test(c)), "no build created or changed");
            assert.equal(workload(b, "app-web").spec.template.spec.containers[0].image, REL_A.ref);
            assert.equal(workload(b, "app-worker-celery").spec.template.spec.containers[0].image, REL_A.ref);
            assert.equal(b.outputs.pinned, true);
            assert.deepEqual(b.outputs.builtOrReused, { base: "pinned", app: "pinned" });
            assert.equal(b.outputs.releaseId, undefined, "a pinned update reports no release id (rollback carries it over from history)");
            // The stack outputs are what `thinlayer rollback` reads back from `pulumi stack export`.
            const built = releaseFromOutputs(a.outputs);
            const pinnedRelease = releaseFromOutputs(b.outputs);
            assert.ok(typeof built === "object" && typeof pinnedRelease === "object", `${built} / ${pinnedRelease}`);
            assert.equal(built.appImageRef, a.outputs.appImageRef);
            assert.equal(built.releaseId, a.outputs.releaseId);
            assert.deepEqual(built.settings, a.outputs.settings);
            assert.equal(pinnedRelease.appImageRef, REL_A.ref);
            assert.equal(
                pinnedRelease.settingsHash,
                built.settingsHash,
                "same settings, same hash: the same release as any update that ran this digest with them",
            );
        } finally {
            app.cleanup();
        }
    });

    test("the release's settings differ: the ConfigMap changes too, still no build", async () => {
        const app = copyExampleApp();
        try {
            // In this history rel-c is newer than the current (rolled-back) release: --to rolls forward to it.
            const pinned = pinWithCli(REL_C.id, "uat-after-rollback");
            assert.equal(pinned.releaseImage, REL_C.ref);
            assert.ok((pinned.settings as string[]).includes("DJANGO_LOG_LEVEL=DEBUG"));
            const a = await evaluateProgram({ stack: "uat", config: { appDir: app.dir }, secrets: SECRETS });
            const b = await evaluateProgram({ stack: "uat", config: { ...pinned, appDir: app.dir }, secrets: SECRETS });
            const changes = diffEvaluations(a, b);
            // REL_C ran other migrations than the checkout has: while pinned the Job is keyed on
            // REL_C's migrations hash (a no-op `migrate` in REL_C's image), never on the checkout's.
            const releaseJob = `app-migrate-${String(pinned.releaseMigrationsHash).slice(0, 12)}`;
            assert.notEqual(pinned.releaseMigrationsHash, a.outputs.migrationsHash);
            assert.equal(b.outputs.migrationJob, releaseJob);
            assert.deepEqual(
                changeSet(changes),
                [
                    ...BUILDS_LEAVE,
                    ...WORKLOADS,
                    "inputs-changed kubernetes:core/v1:ConfigMap::app-settings",
                    `create kubernetes:batch/v1:Job::${releaseJob}`,
                    `delete kubernetes:batch/v1:Job::${a.outputs.migrationJob}`,
                ].sort(),
            );
            const job = b.resources.find((r) => r.name === releaseJob)?.inputs as any; // eslint-disable-line @typescript-eslint/no-explicit-any
            assert.equal(job.spec.template.spec.containers[0].image, REL_C.ref);
            const cm = changes.find((c) => c.type === "kubernetes:core/v1:ConfigMap");
            assert.ok(cm?.paths.includes("data.DJANGO_LOG_LEVEL") && cm.paths.includes("metadata.name"), `a new content-named ConfigMap: ${cm?.paths}`);
            assert.equal((b.outputs.settings as Record<string, string>).DJANGO_LOG_LEVEL, "DEBUG");
        } finally {
            app.cleanup();
        }
    });

    test("a pinned image no longer in the registry fails the preview with the pin, the reason and the fix", async () => {
        const app = copyExampleApp();
        try {
            const pinned = pinWithCli(REL_A.id);
            await assert.rejects(
                evaluateProgram({
                    stack: "uat",
                    preview: true,
                    config: { ...pinned, appDir: app.dir },
                    secrets: SECRETS,
                    mocks: { absentImages: [REL_A.ref] },
                }),
                (e: Error) => {
                    assert.match(
                        e.message,
                        new RegExp(`thinlayer:releaseImage: got "${REL_A.ref.replace(/[.]/g, "\\.")}"; expected an image present in the registry`),
                    );
                    assert.match(
                        e.message,
                        /Fix: pin a release still inside the lifecycle window \(`thinlayer rollback --steps N`\), or build from source \(`thinlayer rollback --clear`\)/,
                    );
                    return true;
                },
            );
        } finally {
            app.cleanup();
        }
    });

    test("a checkout with migrations not yet deployed: a pin never creates their Job (it would run them in the old image)", async () => {
        const app = copyExampleApp();
        try {
            const pinned = pinWithCli(REL_A.id);
            const a = await evaluateProgram({ stack: "uat", config: { appDir: app.dir }, secrets: SECRETS });
            fs.writeFileSync(
                path.join(app.dir, "records", "migrations", "0099_new.py"),
                'from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [("records", "0001_initial")]\n    operations = []\n',
            );
            const b = await evaluateProgram({ stack: "uat", config: { ...pinned, appDir: app.dir }, secrets: SECRETS });
            assert.equal(b.outputs.migrationJob, a.outputs.migrationJob, "the Job stays the release's");
            assert.deepEqual(changeSet(diffEvaluations(a, b)), [...BUILDS_LEAVE, ...WORKLOADS].sort());
            // Clearing the pin builds the checkout: now its Job is created, in the new image.
            const { releaseImage: _image, releaseMigrationsHash: _migrations, ...cleared } = pinned;
            const c = await evaluateProgram({ stack: "uat", config: { ...cleared, appDir: app.dir }, secrets: SECRETS });
            assert.notEqual(c.outputs.migrationJob, a.outputs.migrationJob);
            const job = c.resources.find((r) => r.name === c.outputs.migrationJob)?.inputs as any; // eslint-disable-line @typescript-eslint/no-explicit-any
            assert.equal(job.spec.template.spec.containers[0].image, c.outputs.appImageRef);
            assert.ok(changeSet(diffEvaluations(b, c)).includes(`create kubernetes:batch/v1:Job::${c.outputs.migrationJob}`));
        } finally {
            app.cleanup();
        }
    });

    test("a pin without a known migrations hash (--image) runs no migration Job while pinned", async () => {
        const app = copyExampleApp();
        try {
            const a = await evaluateProgram({ stack: "uat", config: { appDir: app.dir }, secrets: SECRETS });
            const b = await evaluateProgram({ stack: "uat", config: { appDir: app.dir, releaseImage: REL_A.ref }, secrets: SECRETS });
            assert.equal(b.outputs.migrationJob, undefined);
            assert.deepEqual(
                changeSet(diffEvaluations(a, b)),
                [...BUILDS_LEAVE, ...WORKLOADS, `delete kubernetes:batch/v1:Job::${a.outputs.migrationJob}`].sort(),
            );
            for (const d of b.resources.filter((r) => r.type === "kubernetes:apps/v1:Deployment")) assert.deepEqual(d.dependsOn, [], d.name);
        } finally {
            app.cleanup();
        }
    });
});

/**
 * The central claim, fast and for both example stacks (uat and prod on ECR, which the real engine
 * cannot reach here): each scenario evaluates the whole program (index.ts, under mocks) for a stack
 * against state A of a real copy of the example app, changes one thing, evaluates state B, and
 * compares the exact set of resources whose inputs differ. The real engine's own step list for the
 * same scenarios (with update vs replace, which only the providers decide) is in tests/e2e/.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- resource inputs the mocked engine records are untyped JSON */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { changeSet, copyExampleApp, diffEvaluations, evaluateProgram, type EvalResult, type EvaluateOptions } from "../helpers/diff";

const SECRETS = { secretSettings: ["DJANGO_SECRET_KEY=s3cret-a", "DATABASE_URL=postgres://emr:pw@db/emr"] };

const APP_IMAGE = "inputs-changed command:local:Command::app-ensure";
const BASE_IMAGE = "inputs-changed command:local:Command::base-ensure";
const WORKLOADS = ["inputs-changed kubernetes:apps/v1:Deployment::app-web", "inputs-changed kubernetes:apps/v1:Deployment::app-worker-celery"];

/** Evaluates A, applies `change` to the app copy (and/or the config), evaluates B; returns the change set. */
async function scenario(
    stack: string,
    change: (appDir: string) => void,
    configB: Partial<EvaluateOptions> = {},
): Promise<{ set: string[]; a: EvalResult; b: EvalResult }> {
    const app = copyExampleApp();
    try {
        const a = await evaluateProgram({ stack, config: { appDir: app.dir }, secrets: SECRETS });
        change(app.dir);
        const b = await evaluateProgram({
            stack,
            config: { appDir: app.dir, ...(configB.config ?? {}) },
            secrets: configB.secrets ?? SECRETS,
        });
        return { set: changeSet(diffEvaluations(a, b)), a, b };
    } finally {
        app.cleanup();
    }
}

void describe("diff scenarios (whole program, state A -> state B)", { concurrency: 2 }, () => {
    void test("no change: nothing to do", async () => {
        const { set, a } = await scenario("uat", () => {});
        assert.deepEqual(set, []);
        assert.ok(a.resources.length > 10, "the program declared its resources");
    });

    void test("a change to a .dockerignored file (README.md): nothing to do", async () => {
        const { set } = await scenario("uat", (dir) => fs.appendFileSync(path.join(dir, "README.md"), "\nMore docs.\n"));
        assert.deepEqual(set, []);
    });

    void test("app code change: the app image and the workloads only", async () => {
        const { set } = await scenario("uat", (dir) => fs.appendFileSync(path.join(dir, "records", "views.py"), "\n# a harmless change\n"));
        assert.deepEqual(set, [APP_IMAGE, ...WORKLOADS].sort());
    });

    void test("requirements change: base image, app image and workloads", async () => {
        const { set } = await scenario("uat", (dir) => fs.appendFileSync(path.join(dir, "requirements", "production.txt"), "gunicorn-extra-dummy==1.0\n"));
        assert.deepEqual(set, [BASE_IMAGE, APP_IMAGE, ...WORKLOADS].sort());
    });

    void test("new migration: also a new migration Job (created; the old one deleted)", async () => {
        const { set, a, b } = await scenario("uat", (dir) =>
            fs.writeFileSync(
                path.join(dir, "records", "migrations", "0002_patient_note.py"),
                'from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    dependencies = [("records", "0001_initial")]\n    operations = []\n',
            ),
        );
        const oldJob = `kubernetes:batch/v1:Job::${a.outputs.migrationJob}`;
        const newJob = `kubernetes:batch/v1:Job::${b.outputs.migrationJob}`;
        assert.notEqual(oldJob, newJob);
        assert.deepEqual(set, [APP_IMAGE, ...WORKLOADS, `create ${newJob}`, `delete ${oldJob}`].sort());
        // The new Job runs in the app image that carries the new migration.
        const job = b.resources.find((r) => `${r.type}::${r.name}` === newJob);
        assert.equal((job?.inputs as any).spec.template.spec.containers[0].image, b.outputs.appImageRef);
        assert.deepEqual((job?.inputs as any).spec.template.spec.containers[0].command, ["python", "manage.py", "migrate", "--noinput"]);
    });

    void test("settings change: the settings ConfigMap and the workloads", async () => {
        const { set, b } = await scenario("uat", () => {}, {
            config: { settings: ["DJANGO_DEBUG=false", "DJANGO_ALLOWED_HOSTS=emr-uat.example.com", "DJANGO_LOG_LEVEL=DEBUG"] },
        });
        assert.deepEqual(set, ["inputs-changed kubernetes:core/v1:ConfigMap::app-settings", ...WORKLOADS].sort());
        assert.equal((b.outputs.settings as Record<string, string>).DJANGO_LOG_LEVEL, "DEBUG");
    });

    void test("secret settings change: the Secret and the workloads, never the images or the Job", async () => {
        const { set } = await scenario("uat", () => {}, {
            secrets: { secretSettings: ["DJANGO_SECRET_KEY=s3cret-b", "DATABASE_URL=postgres://emr:pw@db/emr"] },
        });
        assert.deepEqual(set, ["inputs-changed kubernetes:core/v1:Secret::app-secrets", ...WORKLOADS].sort());
    });

    void test("uat and prod with the same code: the same image content hashes and tags", async () => {
        const app = copyExampleApp();
        try {
            const [uat, prod] = await Promise.all([
                evaluateProgram({ stack: "uat", config: { appDir: app.dir }, secrets: SECRETS }),
                evaluateProgram({ stack: "prod", config: { appDir: app.dir }, secrets: SECRETS }),
            ]);
            for (const k of ["baseHash", "appHash", "baseTag", "appTag", "migrationsHash"]) assert.equal(prod.outputs[k], uat.outputs[k], k);
            // prod uses uat's repositories by name and so deploys the very same image refs.
            assert.equal(prod.outputs.appImageRef, uat.outputs.appImageRef);
            assert.notEqual(prod.outputs.settingsHash, uat.outputs.settingsHash, "their settings differ");
            assert.ok(
                uat.resources.some((r) => r.type === "aws:ecr/repository:Repository"),
                "uat owns the repositories",
            );
            assert.ok(!prod.resources.some((r) => r.type.startsWith("aws:ecr/")), "prod creates no ECR resources");
        } finally {
            app.cleanup();
        }
    });
});

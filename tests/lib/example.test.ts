/**
 * The example app (examples/django-app) as a deploy would see it: which change moves which hash.
 * Each test works on its own copy in a temp dir, planned through the real config parser.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadProjectSchema, parseStackConfig } from "../../lib/config";
import { computePlan, type Plan } from "../../lib/plan";
import { copyDir, isolateCache, tempDir } from "./inputs.fixtures";

isolateCache();
const REPO = path.resolve(__dirname, "../..");

function exampleCopy(): string {
    const dir = path.join(tempDir(), "emr");
    copyDir(path.join(REPO, "examples/django-app"), dir);
    return dir;
}

async function plan(appDir: string, raw: Record<string, unknown> = {}): Promise<Plan> {
    const cfg = parseStackConfig({ appDir, settings: ["DJANGO_DEBUG=false"], ...raw }, loadProjectSchema(REPO), { projectDir: REPO, stack: "test" });
    return computePlan(cfg, { cache: false });
}

function summary(p: Plan) {
    return { base: p.base.tag, app: p.app.tag, migrations: p.migrations.hash, settings: p.settings.hash, release: p.releaseId };
}

void test("editing app code changes the app tag only", async () => {
    const dir = exampleCopy();
    const before = summary(await plan(dir));
    fs.appendFileSync(path.join(dir, "records/views.py"), "\n# tweak\n");
    const after = summary(await plan(dir));
    assert.equal(after.base, before.base);
    assert.notEqual(after.app, before.app);
    assert.equal(after.migrations, before.migrations);
    assert.equal(after.settings, before.settings);
    assert.notEqual(after.release, before.release);
});

void test("editing requirements/production.txt changes the base and the app tags", async () => {
    const dir = exampleCopy();
    const before = summary(await plan(dir));
    fs.appendFileSync(path.join(dir, "requirements/production.txt"), "structlog==24.4.0\n");
    const after = summary(await plan(dir));
    assert.notEqual(after.base, before.base);
    assert.notEqual(after.app, before.app);
    assert.equal(after.migrations, before.migrations);
});

void test("adding a migration changes the migrations hash and the app tag, not the base", async () => {
    const dir = exampleCopy();
    const p0 = await plan(dir);
    fs.writeFileSync(
        path.join(dir, "records/migrations/0002_patient_phone.py"),
        'from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    dependencies = [("records", "0001_initial")]\n    operations = [migrations.AddField("patient", "phone", models.CharField(max_length=32, blank=True))]\n',
    );
    const p1 = await plan(dir);
    assert.notEqual(p1.migrations.hash, p0.migrations.hash);
    assert.ok(p1.migrations.files.some((f) => f.path === "records/migrations/0002_patient_phone.py"));
    assert.notEqual(p1.app.tag, p0.app.tag);
    assert.equal(p1.base.tag, p0.base.tag);
});

void test("editing the README (ignored) or the app's tests changes nothing", async () => {
    const dir = exampleCopy();
    const before = summary(await plan(dir));
    fs.appendFileSync(path.join(dir, "README.md"), "\nMore docs.\n");
    fs.appendFileSync(path.join(dir, "records/tests/test_views.py"), "\n# more\n");
    fs.mkdirSync(path.join(dir, "records/__pycache__"));
    fs.writeFileSync(path.join(dir, "records/__pycache__/views.cpython-312.pyc"), "x");
    assert.deepEqual(summary(await plan(dir)), before);
});

void test("settings change the settings hash and the release id, never an image tag", async () => {
    const dir = exampleCopy();
    const a = summary(await plan(dir));
    const b = summary(await plan(dir, { settings: ["DJANGO_DEBUG=true"] }));
    assert.equal(b.base, a.base);
    assert.equal(b.app, a.app);
    assert.notEqual(b.settings, a.settings);
    assert.notEqual(b.release, a.release);
});

void test("migration globs are configurable", async () => {
    const dir = exampleCopy();
    const all = await plan(dir);
    const numbered = await plan(dir, { migrationGlobs: ["**/migrations/0*.py"] });
    assert.deepEqual(
        all.migrations.files.map((f) => f.path),
        ["records/migrations/0001_initial.py", "records/migrations/__init__.py"],
    );
    assert.deepEqual(
        numbered.migrations.files.map((f) => f.path),
        ["records/migrations/0001_initial.py"],
    );
    fs.appendFileSync(path.join(dir, "records/migrations/__init__.py"), "# x\n");
    assert.equal((await plan(dir, { migrationGlobs: ["**/migrations/0*.py"] })).migrations.hash, numbered.migrations.hash);
    assert.notEqual((await plan(dir)).migrations.hash, all.migrations.hash);
});

void test("build args of the stack are part of the base hash", async () => {
    const dir = exampleCopy();
    const a = await plan(dir);
    const b = await plan(dir, { buildArgs: ["PYTHON_IMAGE=python:3.13-slim"] });
    assert.notEqual(b.base.tag, a.base.tag);
    assert.notEqual(b.app.tag, a.app.tag);
});

/** computePlan on the real repo's stacks: shape, what each image reads, determinism. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { loadStackConfig } from "../../lib/config";
import { computePlan } from "../../lib/plan";
import { isolateCache } from "./inputs.fixtures";

isolateCache();
const REPO = path.resolve(__dirname, "../..");

void test("the uat plan: tags from hashes, the base reads only the requirement files, the app only app code", async () => {
    const cfg = loadStackConfig(REPO, "uat");
    const p = await computePlan(cfg, { cache: false });
    assert.equal(p.stack, "uat");
    assert.equal(p.platform, "linux/amd64");
    assert.match(p.base.hash, /^[0-9a-f]{64}$/);
    assert.equal(p.base.tag, `deps-${p.base.hash.slice(0, 12)}`);
    assert.equal(p.app.tag, `app-${p.app.hash.slice(0, 12)}`);
    assert.equal(p.base.repository, "thinlayer/base");
    assert.equal(p.app.repository, "thinlayer/app");
    assert.deepEqual(
        p.base.files.map((f) => f.path),
        ["requirements/base.txt", "requirements/production.txt"],
    );
    const appPaths = p.app.files.map((f) => f.path);
    for (const must of ["manage.py", "emr/settings.py", "emr/celery.py", "gunicorn.conf.py", "records/models.py", "records/migrations/0001_initial.py"])
        assert.ok(appPaths.includes(must), must);
    for (const never of ["README.md", "Dockerfile", "Dockerfile.base", ".dockerignore", "records/tests/test_views.py", "requirements/base.txt"])
        assert.ok(!appPaths.includes(never), never);
    assert.equal(p.app.files.find((f) => f.path === "manage.py")?.executable, true);
    assert.equal(p.app.copyOnly, true);
    assert.equal(p.base.copyOnly, false);
    assert.equal(
        p.base.totalBytes,
        p.base.files.reduce((n, f) => n + f.size, 0),
    );
    assert.equal(p.base.dockerfile, path.join(REPO, "examples/django-app/Dockerfile.base"));
    assert.deepEqual(p.settings.values, cfg.settings);
    assert.match(p.releaseId, /^rel-[0-9a-f]{12}$/);
});

void test("uat and prod share images (same code) but not settings or release ids", async () => {
    const [u, pr] = await Promise.all([computePlan(loadStackConfig(REPO, "uat")), computePlan(loadStackConfig(REPO, "prod"))]);
    assert.equal(u.base.tag, pr.base.tag);
    assert.equal(u.app.tag, pr.app.tag);
    assert.notEqual(u.settings.hash, pr.settings.hash);
    assert.notEqual(u.releaseId, pr.releaseId);
});

void test("the plan is the same with and without the cache", async () => {
    const cfg = loadStackConfig(REPO, "uat");
    const a = await computePlan(cfg, { cache: false });
    const b = await computePlan(cfg, { cache: true });
    const c = await computePlan(cfg, { cache: true });
    assert.deepEqual(b, a);
    assert.deepEqual(c, a);
});

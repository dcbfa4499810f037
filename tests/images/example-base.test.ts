/**
 * The example's real base (Dockerfile.base FROM the python:3.12-slim stand-in, see
 * tests/helpers/example-base.ts) runs as the pod spec runs the app: UID 10001, a read-only root
 * filesystem, a tmpfs on /tmp, every capability dropped. What the app image needs is there
 * (gunicorn, celery, Django, psycopg with libpq, pgbouncer, the app user and /app), and the
 * cache gives the same digests in any registry.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { DOCKERD_TOOLS, startDockerd, type StartedDockerd } from "../helpers/dockerd";
import { EXAMPLE_BASE_TOOLS, exampleBase, type ExampleBase } from "../helpers/example-base";
import { startRegistry, type StartedRegistry } from "../helpers/registry";
import { which } from "../helpers/tools";

const TOOLS = [...DOCKERD_TOOLS, ...EXAMPLE_BASE_TOOLS, "docker-registry"];
const missing = TOOLS.filter((t) => (t.startsWith("/") ? !fs.existsSync(t) : which(t) === undefined));
const skip =
    missing.length > 0 && process.env.CI !== "true"
        ? `missing tools: ${missing.join(", ")} (apt-get install -y docker.io debootstrap umoci skopeo docker-registry)`
        : false;

let dockerd: StartedDockerd;
let registry: StartedRegistry;
let base: ExampleBase;

before(async () => {
    if (skip) return;
    if (missing.length) throw new Error(`missing tools: ${missing.join(", ")}; CI=true, so this is a failure, not a skip`);
    [dockerd, registry] = await Promise.all([startDockerd(), startRegistry()]);
    base = await exampleBase(registry.host);
    dockerd.docker(["pull", "--quiet", base.baseRef]);
    dockerd.docker(["pull", "--quiet", base.pythonRef]);
});

after(async () => {
    await Promise.all([dockerd?.stop(), registry?.stop()]);
});

/** Runs a command in the base as the pod spec runs the app container. */
function podRun(image: string, ...cmd: string[]): string {
    return dockerd.docker([
        "run",
        "--rm",
        "--user",
        "10001:10001",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        image,
        ...cmd,
    ]);
}

test("the stand-in has python:3.12-slim's config and lets pip install system-wide", { skip }, () => {
    const [img] = JSON.parse(dockerd.docker(["image", "inspect", base.pythonRef])) as Array<{
        Config: { Env: string[]; Cmd: string[]; User?: string; WorkingDir?: string };
    }>;
    assert.ok(img.Config.Env.includes("PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"));
    assert.ok(img.Config.Env.includes("LANG=C.UTF-8"));
    assert.deepEqual(img.Config.Cmd, ["python3"]);
    assert.equal(img.Config.User ?? "", "");
    const out = dockerd.docker([
        "run",
        "--rm",
        base.pythonRef,
        "sh",
        "-c",
        "python --version && pip --version && ls /usr/lib/python3*/EXTERNALLY-MANAGED 2>/dev/null | wc -l",
    ]);
    assert.match(out, /^Python 3\.\d+\.\d+\npip \d+/);
    assert.equal(out.trim().split("\n").pop(), "0", "a PEP 668 marker would make Dockerfile.base's `pip install` fail");
});

test("the base runs as the pod runs the app: UID 10001, read-only root, tmpfs /tmp, no capabilities", { skip }, () => {
    const out = podRun(
        base.baseRef,
        "sh",
        "-c",
        [
            "id -u; id -g; id -un",
            "stat -c '%u:%g %a' /app",
            "gunicorn --version",
            "celery --version",
            "python -c 'import django, psycopg, whitenoise, dj_database_url, environ, sentry_sdk, redis; print(django.get_version(), psycopg.pq.version())'",
            "command -v pgbouncer",
            "touch /tmp/ok && echo tmp-writable",
            "touch /app/x 2>/dev/null && echo root-writable || echo root-read-only",
        ].join("; "),
    );
    const lines = out.trim().split("\n");
    assert.deepEqual(lines.slice(0, 4), ["10001", "10001", "app", "10001:10001 755"]);
    assert.match(lines[4], /gunicorn \(version 23\.0\.0\)/);
    assert.match(lines[5], /^5\.4\.0/);
    assert.match(lines[6], /^5\.1\.4 \d+$/);
    assert.equal(lines[7], "/usr/sbin/pgbouncer");
    assert.deepEqual(lines.slice(8), ["tmp-writable", "root-read-only"]);
});

test("the cached base loads into another registry with the same digests", { skip }, async () => {
    const other = await startRegistry();
    try {
        const again = await exampleBase(other.host);
        assert.equal(again.baseRef.split("@")[1], base.baseRef.split("@")[1]);
        assert.equal(again.pythonRef.split("@")[1], base.pythonRef.split("@")[1]);
        assert.notEqual(again.baseTag, base.baseTag, "the tag is thinlayer's hash of this registry's PYTHON_IMAGE ref, which names another host");
    } finally {
        await other.stop();
    }
});
